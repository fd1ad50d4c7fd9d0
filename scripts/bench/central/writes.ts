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
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../free-port.js';

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


interface Conn {
  url: string;
  ca: string;
  token: string;
}

function call(conn: Conn, agent: Agent, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      conn.url + path,
      {
        method,
        agent,
        ca: conn.ca,
        headers: {
          authorization: `Bearer ${conn.token}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

let serial = 0;
function machine() {
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
async function run(conn: Conn, count: number, clients: number): Promise<{ seconds: number; latencies: number[] }> {
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
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d;
        if (/central listening on/.test(out)) resolve();
      });
      child.once('exit', (c) => reject(new Error(`central exited with ${c}:\n${out}`)));
    });
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
