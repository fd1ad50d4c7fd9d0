/**
 * Image distribution (issue 21): many machines download one disk image from the agent over HTTP at the
 * same time, side by side with nginx serving the same file from the same disk in the same run, while a
 * DHCP probe measures the agent's DHCP answer time (image serving must not starve DHCP on the agent's
 * one event loop).
 *
 *   npm run build
 *   node dist/scripts/bench/images/run.js [--size-mib 1024] [--clients 100] [--rounds 1] [--probe-ms 20] [--clients-nice 19] [--keep]
 *   node dist/scripts/bench/images/run.js --help
 *
 * A/B of the DHCP p99 between two builds (run alternately, same command): `--servers underlay` (the agent's
 * leg only) and `--agent OTHER/dist/scripts/bench/boot/agent.js` for the other build's agent.
 *
 * Needs root (network namespaces), nginx (/usr/sbin/nginx, Debian nginx-light) and curl. Layout: the
 * boot bench's namespaces (scripts/bench/boot/ns.ts, 198.18.0.0/15): the agent's boot services
 * (scripts/bench/boot/agent.ts: DHCP with its lease journal, TFTP and the HTTP boot app in one process,
 * as the agent runs them) and nginx (its own config in the temp dir, `sendfile on`, worker_processes
 * auto) in the server namespace, both serving `/files/image.raw` from the same file; the clients are
 * `--clients` curl processes in the client namespace (`curl -o /dev/null`, one whole-file GET each, what
 * the deploy's first request is), all started at once, at nice `--clients-nice` (default 19) under
 * SCHED_IDLE (`--clients-sched idle`, the default; `other` for normal scheduling), the same for both
 * servers: the clients stand in for remote machines, which on a real network take no CPU from the
 * server; here they share its 2 cores, and at nice 0 their 100 processes delay the server (and the DHCP
 * probe) as no remote machine could, and take the CPU share the agent's nice-10 sender threads give up
 * for DHCP (nginx's workers run at nice 0). The printed clients' CPU share shows whether they were the limit
 * anyway. Per server: aggregate throughput = bytes
 * received by all clients / time until the last one finished. The DHCP probe (dhcp-probe.ts, a relayed
 * DORA every `--probe-ms` with a new MAC) runs during both servers' downloads: during nginx's it shows
 * what the machine's load alone does to DHCP.
 *
 * Printed: per run the throughput, the CPU seconds of the server (in all, per GiB sent), of the agent's
 * main thread (its event loop, which answers the DHCP probe in both servers' runs: the difference is what
 * serving costs the loop; the sendfile copies run on the addon's threads) and of all clients (the clients must not
 * be the limit: their CPU share is printed), the DHCP p50/p99/max, the agent's event-loop delay p99 over
 * the run (bench-only monitorEventLoopDelay in scripts/bench/boot/agent.ts, read with SIGUSR2) and the
 * probe's own event-loop delay p99 (a starved probe times itself); then the ratio agent/nginx (median over
 * rounds, servers alternating first), the DHCP p99 while the agent serves against the 50 ms target, and
 * the load average before and after.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AgentSpec } from '../boot/agent.js';
import { BenchNet, GIADDR, POOL_CIDR, POOL_END, POOL_START, SERVER_ADDR, type Ns } from '../boot/ns.js';
import type { ProbeResult, ProbeSpec } from './dhcp-probe.js';

const here = fileURLToPath(new URL('.', import.meta.url));
/** Dirty + under-writeback page cache, MiB (/proc/meminfo): a disk still busy with writeback delays every fsync. */
function dirtyMiB(): number {
  const m = readFileSync('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(m)?.[1] ?? 0);
  return Math.round((kb('Dirty') + kb('Writeback')) / 1024);
}
const bootBench = fileURLToPath(new URL('../boot/', import.meta.url));
const NGINX = '/usr/sbin/nginx';
const AGENT_PORT = 8080;
const NGINX_PORT = 8081;
const IMAGE = 'image.raw';
const MiB = 1024 * 1024;
const DHCP_P99_TARGET_MS = 50;

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    clients: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '1' },
    'probe-ms': { type: 'string', default: '20' },
    'clients-nice': { type: 'string', default: '19' },
    'clients-sched': { type: 'string', default: 'idle' },
    servers: { type: 'string', default: 'underlay,nginx' },
    agent: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(`usage: node dist/scripts/bench/images/run.js [options]   (as root)

  --size-mib N        image size in MiB (default 1024)
  --clients N         curl clients downloading the whole image at once (default 100)
  --rounds N          rounds; servers alternate which goes first (default 1)
  --probe-ms N        one DHCP DORA every N ms during each run (default 20)
  --clients-nice N    the clients' nice (default 19)
  --clients-sched S   idle (SCHED_IDLE, default) or other
  --servers LIST      underlay,nginx (default) or one of them; the throughput ratio needs both
  --agent PATH        the agent to run (scripts/bench/boot/agent.js of another build: A/B); default this build's
  --keep              keep the temp dir (logs, lease journal)
  -h, --help          this text

Namespaces: ulboot-<tag> (UL_BENCH_NS_PREFIX overrides 'ulboot').`);
  process.exit(0);
}
const SERVERS = args.servers.split(',').map((s) => s.trim()).filter(Boolean);
for (const s of SERVERS) if (s !== 'underlay' && s !== 'nginx') throw new Error(`--servers: unknown server '${s}' (underlay, nginx)`);
if (SERVERS.length === 0) throw new Error('--servers: none given');
const AGENT_JS = args.agent ?? join(bootBench, 'agent.js');
const SIZE = Number(args['size-mib']) * MiB;
const CLIENTS = Number(args.clients);
const ROUNDS = Math.max(1, Number(args.rounds));
const PROBE_MS = Math.max(1, Number(args['probe-ms']));
const CLIENTS_NICE = Math.min(19, Math.max(0, Number(args['clients-nice'])));
/** 'idle': the clients run under SCHED_IDLE (chrt --idle), so they get a core only when the server's threads do not want it. */
const CLIENTS_SCHED = args['clients-sched'] === 'other' ? 'other' : 'idle';

let net: BenchNet | undefined;
let dir = '';

/** Start a process in a namespace; resolves once it printed READY (or after a moment for servers that print nothing). */
async function start(ns: Ns, argv: string[], log: string, ready: boolean): Promise<ChildProcess & { out: () => string }> {
  const p = net!.spawn(ns, argv) as ChildProcess & { out: () => string };
  const file = createWriteStream(log);
  p.stderr!.pipe(file);
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.out = () => out;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => (ready ? reject(new Error(`${argv.join(' ')}: no READY within 30 s`)) : resolve()), ready ? 30_000 : 500);
    if (ready) p.stdout!.on('data', () => /^READY$/m.test(out) && (clearTimeout(t), resolve()));
    p.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${argv.join(' ')} exited (${code}): ${existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : ''}`));
    });
  });
  return p;
}

/** CPU seconds (user + system) of one /proc stat file (a process, or one thread: task/<tid>/stat). */
function statCpuSec(file: string): number {
  try {
    const s = readFileSync(file, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15) in clock ticks
  } catch {
    return 0;
  }
}

/** CPU seconds of a process's main thread: the agent's event loop (its sender threads and thread pool excluded). */
const mainThreadCpuSec = (pid: number) => statCpuSec(`/proc/${pid}/task/${pid}/stat`);

/** CPU seconds (user + system) of a process and its direct children (nginx's workers), from /proc. */
function cpuSec(pid: number): number {
  const one = (p: number) => statCpuSec(`/proc/${p}/stat`);
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    /* none */
  }
  return one(pid) + children.reduce((a, c) => a + one(c), 0);
}

function writeImage(path: string, bytes: number): void {
  const block = randomBytes(MiB);
  const fd = openSync(path, 'w');
  try {
    for (let off = 0; off < bytes; off += MiB) writeSync(fd, block, 0, Math.min(MiB, bytes - off));
    // On disk before any run: otherwise the first server's run shares the disk with the writeback of
    // the whole image, and the agent's lease fdatasync (every DHCP ACK) waits behind it.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function nginxConfig(root: string, confDir: string): string {
  return [
    'user root;', // the temp dir is 0700; nginx serves the same file as the agent
    'worker_processes auto;',
    'daemon off;',
    `pid ${join(confDir, 'nginx.pid')};`,
    `error_log ${join(confDir, 'error.log')} warn;`,
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    '  sendfile on;',
    '  tcp_nopush on;',
    // The agent drops a client that took no byte for 120 s (its idle timeout); nginx's default is 60 s.
    '  send_timeout 120s;',
    '  default_type application/octet-stream;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(confDir, t)};`),
    `  server { listen ${SERVER_ADDR}:${NGINX_PORT}; location /files/ { alias ${root}/; } }`,
    '}',
    '',
  ].join('\n');
}

interface Run {
  server: string;
  round: number;
  gibPerSec: number;
  wallSec: number;
  ok: number;
  bytes: number;
  serverCpuSec: number;
  /** The agent's main thread (its event loop: DHCP in both servers' runs, the HTTP requests in its own). */
  loopCpuSec: number;
  clientCpuSec: number;
  dhcp: ProbeResult;
  /** The agent's event-loop delay over the run (it answers DHCP in both servers' runs). */
  agentLoop: LoopDelay;
}

interface LoopDelay {
  p50ms: number;
  p99ms: number;
  maxMs: number;
}

/** The agent's event-loop delay since the previous call (SIGUSR2 makes scripts/bench/boot/agent.ts print and reset it). */
async function agentLoopDelay(agent: ChildProcess & { out: () => string }): Promise<LoopDelay> {
  const before = agent.out().length;
  process.kill(agent.pid!, 'SIGUSR2');
  for (let i = 0; i < 500; i++) {
    const m = /^LOOP (.*)$/m.exec(agent.out().slice(before));
    if (m) return JSON.parse(m[1]!) as LoopDelay;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the agent printed no LOOP line within 5 s');
}

/** All clients at once in the client namespace; returns per-client bytes and the clients' CPU seconds (bash `times`). */
async function download(url: string): Promise<{ wallSec: number; ok: number; bytes: number; clientCpuSec: number }> {
  const script = `for i in $(seq 1 ${CLIENTS}); do curl -s -o /dev/null -w '%{http_code} %{size_download}\\n' '${url}' & done; wait; times`;
  const t0 = performance.now();
  const sched = CLIENTS_SCHED === 'idle' ? ['chrt', '--idle', '0'] : [];
  const p = net!.spawn(net!.client, [...sched, 'nice', '-n', String(CLIENTS_NICE), 'bash', '-c', script]);
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  const wallSec = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`clients exited ${code}: ${out.slice(-1000)}`);
  let ok = 0;
  let bytes = 0;
  for (const m of out.matchAll(/^(\d{3}) (\d+)$/gm)) {
    bytes += Number(m[2]);
    if (m[1] === '200' && Number(m[2]) === SIZE) ok++;
  }
  // `times`: the shell's user/sys, then its children's (the curls) — e.g. "0m12.345s 0m45.678s".
  const secs = (s: string) => [...s.matchAll(/(\d+)m([\d.]+)s/g)].reduce((a, m) => a + Number(m[1]) * 60 + Number(m[2]), 0);
  const lines = out.trim().split('\n');
  return { wallSec, ok, bytes, clientCpuSec: secs(lines[lines.length - 1] ?? '') };
}

async function probe(round: number, server: string): Promise<() => Promise<ProbeResult>> {
  const spec: ProbeSpec = { relay: GIADDR, server: SERVER_ADDR, intervalMs: PROBE_MS, macPrefix: round * 16 + (server === 'underlay' ? 1 : 2) };
  const p = await start(net!.client, [process.execPath, join(here, 'dhcp-probe.js'), JSON.stringify(spec)], join(dir, `probe-${round}-${server}.log`), true);
  return async () => {
    const exited = new Promise((r) => p.once('exit', r));
    process.kill(p.pid!, 'SIGTERM');
    await exited;
    const m = /^RESULT (.*)$/m.exec(p.out());
    if (!m) throw new Error(`dhcp probe printed no result: ${readFileSync(join(dir, `probe-${round}-${server}.log`), 'utf8').slice(-1000)}`);
    return JSON.parse(m[1]!) as ProbeResult;
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  for (const bin of [NGINX, '/usr/bin/curl']) if (!existsSync(bin)) throw new Error(`${bin} missing (Debian: nginx-light, curl)`);
  const load0 = load();
  dir = mkdtempSync(join(tmpdir(), 'underlay-bench-images-'));
  const boot = join(dir, 'boot');
  const confDir = join(dir, 'nginx');
  for (const d of [boot, join(dir, 'tftp'), join(dir, 'ipxe'), confDir]) mkdirSync(d, { recursive: true });
  console.log(`# image distribution: ${CLIENTS} clients × ${SIZE / MiB} MiB, ${ROUNDS} round(s), DHCP probe every ${PROBE_MS} ms, servers ${SERVERS.join(',')}; agent ${AGENT_JS}; load average ${load0}`);
  console.log(
    `# the clients (curl) run at nice ${CLIENTS_NICE}${CLIENTS_SCHED === 'idle' ? ' under SCHED_IDLE' : ''} for both servers (they stand in for remote machines; --clients-nice 0 --clients-sched other for the old setup); servers and the DHCP probe at nice 0 (SCHED_OTHER)`,
  );
  writeImage(join(boot, IMAGE), SIZE);
  writeFileSync(join(confDir, 'nginx.conf'), nginxConfig(boot, confDir));

  net = new BenchNet();
  const spec: AgentSpec = {
    address: SERVER_ADDR,
    interface: 'br0',
    subnet: { cidr: POOL_CIDR, start: POOL_START, end: POOL_END, gateway: GIADDR },
    leaseFile: join(dir, 'leases.jsonl'),
    tftpRoot: join(dir, 'tftp'),
    tftpPort: 6969,
    bootDir: boot,
    ipxeDir: join(dir, 'ipxe'),
    httpPort: AGENT_PORT,
  };
  const agent = await start(net.server, [process.execPath, AGENT_JS, JSON.stringify(spec)], join(dir, 'agent.log'), true);
  const nginx = SERVERS.includes('nginx') ? await start(net.server, [NGINX, '-p', confDir, '-c', join(confDir, 'nginx.conf')], join(dir, 'nginx.out'), false) : undefined;
  const servers = [
    { name: 'underlay', pid: agent.pid!, url: `http://${SERVER_ADDR}:${AGENT_PORT}/files/${IMAGE}` },
    ...(nginx ? [{ name: 'nginx', pid: nginx.pid!, url: `http://${SERVER_ADDR}:${NGINX_PORT}/files/${IMAGE}` }] : []),
  ].filter((s) => SERVERS.includes(s.name));
  // Warm-up, not counted: the image into the page cache, both servers' first requests.
  for (const s of servers) execFileSync('ip', net.client.argv(['curl', '-sf', '-o', '/dev/null', s.url]));

  console.log(`# page cache dirty or under writeback before the runs: ${dirtyMiB()} MiB (the image was fsync'd)`);
  const runs: Run[] = [];
  console.log('\n| round | server | aggregate GiB/s | wall s | complete | server CPU s (share of 2 cores) | server CPU s per GiB | agent event-loop CPU s | clients CPU s (share of 2 cores) | DHCP p50 / p99 / max ms (failed) | DHCP p99 to OFFER / OFFER to ACK ms | agent loop delay p99 / max ms | probe loop p99 ms |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|');
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of round % 2 ? [...servers].reverse() : servers) {
      const stopProbe = await probe(round, s.name);
      await agentLoopDelay(agent);
      const cpu0 = cpuSec(s.pid);
      const loop0 = mainThreadCpuSec(agent.pid!);
      const d = await download(s.url);
      const serverCpuSec = cpuSec(s.pid) - cpu0;
      const loopCpuSec = mainThreadCpuSec(agent.pid!) - loop0;
      const agentLoop = await agentLoopDelay(agent);
      const dhcp = await stopProbe();
      const r: Run = { server: s.name, round, gibPerSec: d.bytes / (1024 * MiB) / d.wallSec, ...d, serverCpuSec, loopCpuSec, dhcp, agentLoop };
      runs.push(r);
      const share = r.clientCpuSec / r.wallSec / 2;
      console.log(
        `| ${round + 1} | ${s.name} | ${r.gibPerSec.toFixed(2)} | ${r.wallSec.toFixed(1)} | ${r.ok}/${CLIENTS} | ${r.serverCpuSec.toFixed(1)} (${((r.serverCpuSec / r.wallSec / 2) * 100).toFixed(0)} %) | ${(r.serverCpuSec / (r.bytes / (1024 * MiB))).toFixed(3)} | ${r.loopCpuSec.toFixed(2)} | ${r.clientCpuSec.toFixed(1)} (${(share * 100).toFixed(0)} %) | ${dhcp.p50ms.toFixed(1)} / ${dhcp.p99ms.toFixed(1)} / ${dhcp.maxMs.toFixed(1)} (${dhcp.failed} of ${dhcp.count}) | ${dhcp.offerP99ms.toFixed(1)} / ${dhcp.ackP99ms.toFixed(1)} | ${agentLoop.p99ms.toFixed(1)} / ${agentLoop.maxMs.toFixed(1)} | ${dhcp.ownLoopP99ms?.toFixed(1) ?? '–'} |`,
      );
    }
  }
  const ours = runs.filter((r) => r.server === 'underlay');
  const ref = runs.filter((r) => r.server === 'nginx');
  const failed = ours.reduce((a, r) => a + r.dhcp.failed, 0);
  const incomplete = runs.filter((r) => r.ok !== CLIENTS).length;
  if (ref.length) console.log(`\nnginx (reference): ${median(ref.map((r) => r.gibPerSec)).toFixed(2)} GiB/s aggregate (median)${ours.length ? `; underlay: ${median(ours.map((r) => r.gibPerSec)).toFixed(2)} GiB/s` : ''}`);
  if (ours.length && ref.length) {
    const ratio = median(ours.map((r, i) => r.gibPerSec / ref[i]!.gibPerSec));
    console.log(`throughput underlay/nginx: ${ratio.toFixed(2)}× (target ≥ 1.0×: ${ratio >= 1 ? 'met' : 'MISSED'})`);
  }
  if (ours.length) {
    const p99 = Math.max(...ours.map((r) => r.dhcp.p99ms));
    console.log(`DHCP p99 while the agent serves the image: ${p99.toFixed(1)} ms, ${failed} unanswered (target < ${DHCP_P99_TARGET_MS} ms: ${p99 < DHCP_P99_TARGET_MS && failed === 0 ? 'met' : 'MISSED'})`);
  }
  if (incomplete) console.log(`WARNING: ${incomplete} run(s) had incomplete downloads`);
  console.log(`load average: before ${load0}, after ${load()}`);
}

function cleanup(): void {
  try {
    net?.destroy();
  } finally {
    if (dir && !args.keep) rmSync(dir, { recursive: true, force: true });
    else if (dir) console.log(`kept ${dir}`);
  }
}

process.once('SIGINT', () => {
  cleanup();
  process.exit(130);
});
main()
  .then(() => {
    cleanup();
    process.exit(0);
  })
  .catch((e: Error) => {
    console.error(e);
    cleanup();
    process.exit(1);
  });
