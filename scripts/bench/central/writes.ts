/**
 * Benchmark: durable machine creates per second against a real central (spawned from the built CLI),
 * with C concurrent clients, each its own keep-alive HTTPS agent, at 1k and at 10k machines already in
 * the store; p50/p99 latency; the central's RSS (VmRSS) at 10k machines.
 *
 *   npx tsc -p . && node scripts/postbuild.mjs
 *   node dist/scripts/bench/central/writes.js [--clients 64] [--writes 5000] [--keep] [--profile DIR]
 *
 * Every create is acknowledged only after the journal's group commit fsync'd it (see central/store).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../free-port.js';
import { call, run, untilListening, type Conn } from './create-load.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '64' },
    writes: { type: 'string', default: '5000' },
    keep: { type: 'boolean', default: false },
    /** Write a V8 CPU profile of the central to this directory (node --cpu-prof). */
    profile: { type: 'string' },
  },
});
const CLIENTS = Number(args.clients);
const WRITES = Number(args.writes);
const CLI = fileURLToPath(new URL('../../../shared/cli/underlay.js', import.meta.url));


const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** user+system CPU seconds the process has used (from /proc/PID/stat; clock ticks are 100 Hz on Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'underlay-bench-'));
  const port = await freePort();
  const nodeArgs = args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile] : [];
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'central', 'serve', '--data', join(dir, 'data'), '--listen', `127.0.0.1:${port}`], {
    env: { ...process.env, UNDERLAY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((r) => child.once('exit', r));
  const cleanup = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    void cleanup().then(() => process.exit(130));
  });
  try {
    const out = await untilListening(child);
    const conn: Conn = {
      url: /central listening on (\S+)/.exec(out)![1],
      ca: readFileSync(join(dir, 'data', 'ca.pem'), 'utf8'),
      token: readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim(),
    };
    const admin = new Agent({ keepAlive: true });
    const site = await call(conn, admin, 'POST', '/api/v1/sites', { name: 'bench' });
    if (site.status !== 201) throw new Error(site.text);

    const results: Record<string, unknown>[] = [];
    for (const base of [1_000, 10_000]) {
      const have = JSON.parse((await call(conn, admin, 'GET', '/api/v1/machines?limit=1')).text).total as number;
      if (have < base) await run(conn, base - have, CLIENTS); // seed
      const rssBefore = rssMiB(child.pid!);
      const cpuBefore = cpuSeconds(child.pid!);
      const { seconds, latencies } = await run(conn, WRITES, CLIENTS);
      const cpu = cpuSeconds(child.pid!) - cpuBefore;
      latencies.sort((a, b) => a - b);
      const r = {
        machinesBefore: base,
        writes: WRITES,
        clients: CLIENTS,
        writesPerSecond: Math.round(WRITES / seconds),
        p50ms: +pct(latencies, 50).toFixed(2),
        p99ms: +pct(latencies, 99).toFixed(2),
        maxMs: +latencies[latencies.length - 1].toFixed(2),
        // Load-independent: the central's CPU time per acknowledged write (includes TLS and the HTTP stack).
        centralCpuMsPerWrite: +((cpu * 1000) / WRITES).toFixed(3),
        rssMiBAtStart: +rssBefore.toFixed(1),
        rssMiBAfter: +rssMiB(child.pid!).toFixed(1),
      };
      results.push(r);
      process.stdout.write(
        `${base} machines in store: ${r.writesPerSecond} durable creates/s (${CLIENTS} clients, ${WRITES} writes), p50 ${r.p50ms} ms, p99 ${r.p99ms} ms; central CPU ${r.centralCpuMsPerWrite} ms/write; RSS ${r.rssMiBAtStart} MiB → ${r.rssMiBAfter} MiB\n`,
      );
    }
    const metrics = await call(conn, admin, 'GET', '/metrics');
    const commits = /underlay_store_commit_duration_seconds_count (\d+)/.exec(metrics.text)?.[1];
    const records = /underlay_store_records_committed_total (\d+)/.exec(metrics.text)?.[1];
    admin.destroy();
    process.stdout.write(JSON.stringify({ node: process.version, loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '), results, groupCommits: Number(commits), recordsCommitted: Number(records) }) + '\n');
  } finally {
    await cleanup();
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench failed: ${e.stack ?? e.message}\n`);
  process.exitCode = 1;
});
