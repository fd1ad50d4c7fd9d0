/**
 * DHCP answer time seen from outside while something else loads the agent: one DORA every `intervalMs`
 * (a new MAC each time) through the relay socket of scripts/bench/boot/dhcp-client.ts, until SIGTERM;
 * then prints `RESULT {...}` (count, failures, p50/p99/max ms from the first DISCOVER to the ACK).
 *
 *   ip netns exec CLIENT_NS node dist/scripts/bench/images/dhcp-probe.js '{"relay":"198.19.0.1","server":"198.18.0.1","intervalMs":20,"macPrefix":1}'
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { macFor, RelayDhcpClient, type DoraResult } from '../boot/dhcp-client.js';

export interface ProbeSpec {
  relay: string;
  server: string;
  intervalMs: number;
  /** Distinct per run, so each run's MACs are new machines. */
  macPrefix: number;
}

export interface ProbeResult {
  count: number;
  failed: number;
  p50ms: number;
  p99ms: number;
  maxMs: number;
  /** DISCOVER → OFFER p99 (no disk on the server's side) and OFFER → ACK p99 (the ACK waits for the lease's fdatasync), ms. */
  offerP99ms: number;
  ackP99ms: number;
  /** The probe's own event-loop delay p99, ms: a probe starved of CPU times itself, not the server. */
  ownLoopP99ms?: number;
}

export function summarise(results: DoraResult[]): ProbeResult {
  const ms = results.filter((r) => r.ok).map((r) => r.ms).sort((a, b) => a - b);
  const pct = (xs: number[], p: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);
  const at = (p: number) => pct(ms, p);
  const ok = results.filter((r) => r.ok && r.offerMs !== undefined);
  const offer = ok.map((r) => r.offerMs!).sort((a, b) => a - b);
  const ack = ok.map((r) => r.ms - r.offerMs!).sort((a, b) => a - b);
  return { count: results.length, failed: results.length - ms.length, p50ms: at(50), p99ms: at(99), maxMs: ms.length ? ms[ms.length - 1]! : NaN, offerP99ms: pct(offer, 99), ackP99ms: pct(ack, 99) };
}

async function main(spec: ProbeSpec): Promise<void> {
  // One attempt per phase, long timeout: a slow answer is measured as slow, not hidden by a resend.
  const client = new RelayDhcpClient({ relay: spec.relay, server: spec.server, timeoutMs: 5000, retries: 0 });
  await client.open();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const pending: Promise<DoraResult>[] = [];
  let i = 0;
  const timer = setInterval(() => pending.push(client.dora(macFor(spec.macPrefix, i++))), spec.intervalMs);
  process.stdout.write('READY\n');
  await new Promise<void>((r) => process.once('SIGTERM', () => r()));
  clearInterval(timer);
  const results = await Promise.all(pending);
  await client.close();
  process.stdout.write(`RESULT ${JSON.stringify({ ...summarise(results), ownLoopP99ms: Math.round(loop.percentile(99) / 1e4) / 100 })}\n`, () => process.exit(0));
}

main(JSON.parse(process.argv[2] ?? '{}') as ProbeSpec).catch((e: Error) => {
  process.stderr.write(`dhcp probe failed: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
