/**
 * Benchmark (issue 17): durable machine creates per second with the same client against the file store,
 * PostgreSQL with one replica and PostgreSQL with two (the clients alternate between them), at `--base`
 * machines already stored; then the failover time: `kill -9` of one of two replicas → every agent linked
 * to the other (agents on the real agent link, agent/link/link.ts).
 *
 *   npx tsc -p . && node scripts/postbuild.mjs
 *   node dist/scripts/bench/ha/run.js [--base 10000] [--writes 5000] [--clients 64] [--agents 200]
 *
 * Needs root and PostgreSQL's binaries (a throwaway cluster in a temp dir on loopback, removed after).
 * Signed tasks per second with 1,000 agents over 2 replicas: the agents benchmark with `--replicas 2`
 * (scripts/bench/agents/run.ts).
 */
import { readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeSigningKey } from '../../../central/keys/signing-key.js';
import { makeCsr } from '../../../shared/pki/csr.js';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { freePort } from '../free-port.js';
import { LinkSims } from '../../../test/ha/link-sims.js';
import { cloneIdentity } from '../../../test/ha/replicas.js';
import { TestPostgres } from '../../../test/support/postgres.js';
import { call, run, untilListening, type Conn } from '../central/create-load.js';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string', default: '10000' },
    writes: { type: 'string', default: '5000' },
    clients: { type: 'string', default: '64' },
    agents: { type: 'string', default: '200' },
  },
});
const BASE = Number(args.base);
const WRITES = Number(args.writes);
const CLIENTS = Number(args.clients);
const AGENTS = Number(args.agents);

const CLI = fileURLToPath(new URL('../../../shared/cli/underlay.js', import.meta.url));
const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

interface CentralProcess {
  url: string;
  ca: string;
  token: string;
  dataDir: string;
  kill(): Promise<void>;
  cleanup(): Promise<void>;
}

/** `underlay central serve` from the built CLI on a free loopback port (the data dir may hold a copied identity). */
async function spawnCentral(opts: { dataDir?: string; args?: string[] } = {}): Promise<CentralProcess> {
  const parent = opts.dataDir ? undefined : tempDir('underlay-bench-ha-');
  const dataDir = opts.dataDir ?? join(parent!, 'data');
  const child = spawn(process.execPath, [CLI, 'central', 'serve', '--data', dataDir, '--listen', `127.0.0.1:${await freePort()}`, ...(opts.args ?? [])], {
    env: { ...process.env, UNDERLAY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const out = await untilListening(child);
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return {
    url: /central listening on (\S+)/.exec(out)![1],
    ca: readFileSync(join(dataDir, 'ca.pem'), 'utf8'),
    token: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(),
    dataDir,
    kill,
    cleanup: async () => {
      await kill();
      if (parent) rmSync(parent, { recursive: true, force: true });
    },
  };
}

const conn = (c: CentralProcess): Conn => ({ url: c.url, ca: c.ca, token: c.token });

/** Creates/s with CLIENTS clients spread over the replicas given, after seeding BASE machines. */
async function createsPerSecond(replicas: CentralProcess[]): Promise<number> {
  const admin = new Agent({ keepAlive: true });
  await call(conn(replicas[0]), admin, 'POST', '/api/v1/sites', { name: 'bench' });
  admin.destroy();
  const share = (n: number) => Math.ceil(n / replicas.length);
  await Promise.all(replicas.map((r) => run(conn(r), share(BASE), Math.max(1, share(CLIENTS)))));
  const t0 = performance.now();
  await Promise.all(replicas.map((r) => run(conn(r), share(WRITES), Math.max(1, share(CLIENTS)))));
  return Math.round((share(WRITES) * replicas.length) / ((performance.now() - t0) / 1000));
}

async function twoReplicas(store: string): Promise<{ a: CentralProcess; b: CentralProcess; bDir: string }> {
  const a = await spawnCentral({ args: ['--store', store] });
  const bDir = cloneIdentity(a.dataDir);
  const b = await spawnCentral({ dataDir: join(bDir, 'data'), args: ['--store', store] });
  return { a, b, bDir };
}

async function failoverMs(a: CentralProcess, b: CentralProcess): Promise<number> {
  const dir = tempDir('underlay-bench-ha-');
  const sims = new LinkSims(dir, decodeSigningKey(readFileSync(join(a.dataDir, 'signing.key'), 'utf8')).publicKey);
  try {
    await call(conn(a), new Agent(), 'POST', '/api/v1/sites', { name: 'fo' });
    const { keyPem, csrPem } = makeCsr('agent-candidate:bench');
    for (let i = 0; i < AGENTS; i++) {
      const via = i % 2 === 0 ? a : b;
      const t = JSON.parse((await call(conn(via), new Agent(), 'POST', '/api/v1/tokens', { role: 'agent-join', site: 'fo' })).text);
      const bearer = /^ulj1\.(ul_[^.]+)\./.exec(t.token)![1];
      const j = JSON.parse((await call({ ...conn(via), token: bearer }, new Agent(), 'POST', '/api/v1/agents/join', { csr: csrPem, sealPublicKey: Buffer.alloc(32, 7).toString('base64'), name: `b-${i}`, agentVersion: 'bench' })).text);
      await sims.add({ id: j.agent.id, site: 'fo', key: keyPem, cert: j.certificate, ca: a.ca }, i % 2 === 0 ? `${a.url},${b.url}` : `${b.url},${a.url}`);
    }
    while (sims.readyOn(a.url) + sims.readyOn(b.url) < AGENTS) await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    await a.kill();
    while (sims.readyOn(b.url) < AGENTS) await new Promise((r) => setTimeout(r, 20));
    return Math.round(performance.now() - t0);
  } finally {
    await sims.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const cluster = await TestPostgres.start();
  const started: CentralProcess[] = [];
  const dirs: string[] = [];
  try {
    const file = await spawnCentral();
    started.push(file);
    const fileRate = await createsPerSecond([file]);
    await file.cleanup();

    const one = await spawnCentral({ args: ['--store', await cluster.createDatabase('bench')] });
    started.push(one);
    const pg1 = await createsPerSecond([one]);
    await one.cleanup();

    const two = await twoReplicas(await cluster.createDatabase('bench'));
    started.push(two.a, two.b);
    dirs.push(two.bDir);
    const pg2 = await createsPerSecond([two.a, two.b]);
    const failover = await failoverMs(two.a, two.b);
    const result = { node: process.version, loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '), base: BASE, writes: WRITES, clients: CLIENTS, agents: AGENTS, createsPerSecond: { file: fileRate, postgres1: pg1, postgres2: pg2 }, failoverMs: failover };
    process.stdout.write(`durable creates/s at ${BASE} machines: file ${fileRate}, PostgreSQL 1 replica ${pg1}, 2 replicas ${pg2}; failover of ${AGENTS} agents ${failover} ms\n${JSON.stringify(result)}\n`);
  } finally {
    for (const c of started) await c.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    cluster.stop();
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench failed: ${e.stack ?? e.message}\n`);
  process.exitCode = 1;
});
