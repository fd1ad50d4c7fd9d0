/** The machine-create load the central write benchmarks share (scripts/bench/central/writes.ts, scripts/bench/ha). */
import { Agent } from 'node:https';
import { untilListening } from '../central-process.js';
import { call, type Conn } from '../https-call.js';

export { call, untilListening, type Conn };

let serial = 0;
export function machine() {
  const i = serial++;
  const mac = [0x52, 0x54, (i >> 24) & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':');
  return {
    name: `bench-${String(i).padStart(7, '0')}`,
    site: 'bench',
    rack: `r${i % 40}`,
    macs: [mac],
    params: { role: i % 3 === 0 ? 'db' : 'web', index: i },
    facts: { cpu: { cores: 16, threads: 32 }, memory: { totalBytes: 68719476736 }, disks: [{ name: 'sda', sizeBytes: 960197124096 }] },
  };
}

/** `count` creates with `clients` workers, each with its own keep-alive agent; returns latencies (ms). */
export async function run(conn: Conn, count: number, clients: number): Promise<{ seconds: number; latencies: number[] }> {
  const agents = Array.from({ length: clients }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
  // Warm the connections (TLS handshakes are not what we measure).
  await Promise.all(agents.map((a) => call(conn, a, 'GET', '/healthz')));
  const latencies: number[] = [];
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    agents.map(async (agent) => {
      while (next < count) {
        next++;
        const t0 = process.hrtime.bigint();
        const r = await call(conn, agent, 'POST', '/api/v1/machines', machine());
        if (r.status !== 201) throw new Error(`create failed: ${r.status} ${r.text}`);
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const a of agents) a.destroy();
  return { seconds, latencies };
}
