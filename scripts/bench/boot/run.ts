/**
 * Boot benchmark (issues "Boot services on the agent" and 21): the agent's DHCP, TFTP and HTTP boot services
 * against Kea, tftpd-hpa and nginx, each phase checking that the reference server, not the
 * client, was the limit, plus a storm of N machines booting at once, against the agent and against
 * Kea + tftpd-hpa + nginx in the same run.
 *
 *   npx tsc -p . && node scripts/postbuild.mjs && node dist/scripts/bench/boot/run.js [options]
 *
 *   --only dhcp,tftp,http,storm   phases to run (default all)
 *   --dhcp-n 20000,100000         clients per DHCP run (perfdhcp, relay mode)
 *   --dhcp-rate 40000             DORAs/s perfdhcp offers (open loop: above every server's capacity)
 *   --kea-floor 5000              no ratio is printed when Kea single-threaded does fewer leases/s
 *   --dhcp-rounds 2               runs per server and N (order rotated each round)
 *   --dhcp-servers underlay,kea,kea-mt
 *   --server-cpus 0  --generator-cpus 1   taskset pinning of the DHCP server and perfdhcp ('' = none)
 *   --perfdhcp-threads single     perfdhcp's -g (it would pick multi on a 2-CPU machine, pinned or not)
 *   --agent-b PATH                another build's dist/scripts/bench/boot/agent.js, run as server underlay-b (A/B)
 *   --tftp-rounds 3  --tftp-mib 64
 *   --http-concurrency 1,8,32  --kernel-mib 8  --initrd-mib 32
 *   --storm-n 1000  --storm-initrd-mib 8  --storm-servers underlay,reference[,underlay-b]  --storm-workers 2
 *   --deadline-min 45             hard stop: everything is killed and cleaned up
 *
 * Network (see ns.ts): two namespaces made for the run, 198.18.0.0/15 only. Every server runs alone, in turn,
 * on 198.18.0.1 in the server namespace with a fresh lease database; the simulated machines are a relay at
 * 198.19.0.1 in the client namespace (giaddr; servers answer by unicast to giaddr:67). Processes are killed
 * by PID; namespaces and temp files are removed on exit, on failure and on SIGINT/SIGTERM.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentSpec } from './agent.js';
import type { HttpSpec, StormSpec, TftpSpec } from './client.js';
import { agentBound, auditLeases, keaBound, type LeaseAudit } from './lease-files.js';
import { BenchNet, GIADDR, POOL_CIDR, POOL_END, POOL_START, SERVER_ADDR, type Ns } from './ns.js';
import { answerWindow, parsePerfdhcp, procCpuSeconds, perfdhcpArgv, type PerfdhcpReport, type PerfdhcpRun, udpCounters } from './perfdhcp.js';
import { KEA_PUBLISHED_ST, clientVerdict, pinnedArgv, ratioOrRefusal, referenceVerdict } from './reference-check.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const IPXE_DIR = '/usr/lib/ipxe';
const MiB = 1024 * 1024;

interface Args {
  only: Set<string>;
  dhcpN: number[];
  dhcpRate: number;
  keaFloor: number;
  dhcpRounds: number;
  dhcpServers: string[];
  /** Another build's dist/scripts/bench/boot/agent.js, run as DHCP server `underlay-b` (A/B in one run). */
  agentB?: string;
  /** taskset CPU lists for the DHCP server under test and for perfdhcp ('' = not pinned). */
  serverCpus: string;
  generatorCpus: string;
  /** perfdhcp's thread mode (`-g`): pinned to one CPU, its receiver thread would share the sender's core. */
  perfdhcpThreads: 'single' | 'multi';
  tftpRounds: number;
  tftpMiB: number;
  httpConcurrency: number[];
  kernelMiB: number;
  initrdMiB: number;
  stormN: number;
  stormInitrdMiB: number;
  stormServers: string[];
  /** Worker threads of the storm client doing TFTP + HTTP. */
  stormWorkers: number;
  deadlineMin: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    only: new Set(['dhcp', 'tftp', 'http', 'storm']),
    dhcpN: [20000, 100000],
    dhcpRate: 40000,
    keaFloor: 5000,
    dhcpRounds: 2,
    dhcpServers: ['underlay', 'kea', 'kea-mt'],
    serverCpus: '0',
    generatorCpus: '1',
    perfdhcpThreads: 'single',
    tftpRounds: 3,
    tftpMiB: 64,
    httpConcurrency: [1, 8, 32],
    kernelMiB: 8,
    initrdMiB: 32,
    stormN: 1000,
    stormInitrdMiB: 8,
    stormServers: ['underlay', 'reference'],
    stormWorkers: 2,
    deadlineMin: 45,
  };
  const ints = (v: string | undefined, lo: number, hi: number) => {
    const xs = (v ?? '').split(',').map(Number);
    if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < lo || x > hi)) throw new Error(`bad value ${v} (integers ${lo}..${hi})`);
    return xs;
  };
  const cpuList = (v: string | undefined) => {
    if (v === undefined || !/^(\d+([-,]\d+)*)?$/.test(v)) throw new Error(`bad CPU list ${v} (taskset -c syntax, or '')`);
    return v;
  };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]!;
    const v = argv[i + 1];
    switch (k) {
      case '--only': a.only = new Set((v ?? '').split(',')); break;
      case '--dhcp-n': a.dhcpN = ints(v, 1, 120000); break;
      case '--dhcp-rate': a.dhcpRate = ints(v, 100, 1000000)[0]!; break;
      case '--kea-floor': a.keaFloor = ints(v, 0, 1000000)[0]!; break;
      case '--dhcp-rounds': a.dhcpRounds = ints(v, 1, 20)[0]!; break;
      case '--dhcp-servers': a.dhcpServers = (v ?? '').split(','); break;
      case '--agent-b': a.agentB = v; break;
      case '--server-cpus': a.serverCpus = cpuList(v); break;
      case '--generator-cpus': a.generatorCpus = cpuList(v); break;
      case '--perfdhcp-threads':
        if (v !== 'single' && v !== 'multi') throw new Error('--perfdhcp-threads is single or multi');
        a.perfdhcpThreads = v;
        break;
      case '--tftp-rounds': a.tftpRounds = ints(v, 1, 20)[0]!; break;
      case '--tftp-mib': a.tftpMiB = ints(v, 1, 512)[0]!; break;
      case '--http-concurrency': a.httpConcurrency = ints(v, 1, 256); break;
      case '--kernel-mib': a.kernelMiB = ints(v, 1, 256)[0]!; break;
      case '--initrd-mib': a.initrdMiB = ints(v, 1, 1024)[0]!; break;
      case '--storm-n': a.stormN = ints(v, 1, 20000)[0]!; break;
      case '--storm-initrd-mib': a.stormInitrdMiB = ints(v, 1, 256)[0]!; break;
      case '--storm-servers': a.stormServers = (v ?? '').split(','); break;
      case '--storm-workers': a.stormWorkers = ints(v, 1, 16)[0]!; break;
      case '--deadline-min': a.deadlineMin = ints(v, 1, 180)[0]!; break;
      default: throw new Error(`unknown option ${k}`);
    }
  }
  for (const s of a.stormServers) if (!['underlay', 'reference', ...(a.agentB ? ['underlay-b'] : [])].includes(s)) throw new Error(`unknown storm servers ${s} (underlay, reference, underlay-b with --agent-b)`);
  for (const s of a.dhcpServers) if (!['underlay', 'kea', 'kea-mt', ...(a.agentB ? ['underlay-b'] : [])].includes(s)) throw new Error(`unknown DHCP server ${s}${s === 'underlay-b' ? ' (needs --agent-b)' : ''}`);
  return a;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');

let net: BenchNet | undefined;
let agentB = '';
let dir = '';
let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  try {
    net?.destroy();
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Start a server process in the server namespace, stderr (and stdout unless piped for READY) to a log file. */
async function startProc(ns: Ns, argv: string[], log: string, opts: { ready?: 'line'; env?: NodeJS.ProcessEnv } = {}): Promise<ChildProcess> {
  const out = createWriteStream(log);
  const p = net!.spawn(ns, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
  p.stderr!.pipe(out);
  let stdout = '';
  p.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!opts.ready) out.write(d);
  });
  (p as ChildProcess & { output: () => string }).output = () => stdout;
  if (opts.ready === 'line') {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${argv[0]} not ready after 20 s (log ${log})`)), 20_000);
      const check = () => {
        if (/^READY$/m.test(stdout)) {
          clearTimeout(t);
          resolve();
        }
      };
      p.stdout!.on('data', check);
      p.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`${argv.join(' ')} exited (${code}): ${readFileSync(log, 'utf8').slice(-2000)}`));
      });
    });
  } else {
    // Give it a moment to fail on a bad config.
    await new Promise((r) => setTimeout(r, 300));
    if (p.exitCode !== null) throw new Error(`${argv.join(' ')} exited (${p.exitCode}): ${readFileSync(log, 'utf8').slice(-2000)}`);
  }
  return p;
}

async function runClient<T>(mode: string, spec: unknown, timeoutMs: number): Promise<T> {
  const p = net!.spawn(net!.client, [process.execPath, join(here, 'client.js'), mode, JSON.stringify(spec)]);
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const t = setTimeout(() => void net!.kill(p, 500), timeoutMs);
  const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  clearTimeout(t);
  const m = /^RESULT (.*)$/m.exec(out);
  if (code !== 0 || !m) throw new Error(`client ${mode} failed (exit ${code}${code === null ? ', killed at the time limit' : ''}): ${err.slice(-3000)}`);
  return JSON.parse(m[1]!) as T;
}

function version(cmd: string[], re: RegExp): string {
  try {
    const o = execFileSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return re.exec(o)?.[0] ?? '?';
  } catch (e) {
    const o = String((e as { stdout?: string }).stdout ?? '') + String((e as { stderr?: string }).stderr ?? '');
    return re.exec(o)?.[0] ?? '?';
  }
}

// ---- DHCP -----------------------------------------------------------------------------------------------

function agentSpec(extra: Partial<AgentSpec>): AgentSpec {
  return {
    address: SERVER_ADDR,
    interface: 'br0',
    subnet: { cidr: POOL_CIDR, start: POOL_START, end: POOL_END, gateway: GIADDR },
    tftpRoot: join(dir, 'tftp'),
    tftpPort: 69,
    bootDir: join(dir, 'boot'),
    ipxeDir: IPXE_DIR,
    httpPort: 8080,
    ...extra,
  };
}

async function startDhcpServer(name: string, run: string, cpus?: string): Promise<ChildProcess> {
  const d = join(dir, 'dhcp', run);
  mkdirSync(d, { recursive: true });
  const s = net!.server;
  if (name === 'underlay' || name === 'underlay-b') {
    const agentJs = name === 'underlay' ? join(here, 'agent.js') : agentB;
    return startProc(s, pinnedArgv(cpus, [process.execPath, ...(process.env.UL_BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean), agentJs, JSON.stringify(agentSpec({ leaseFile: join(d, 'leases.jsonl'), tftpPort: 6970, httpPort: 8090 }))]), join(d, 'log'), { ready: 'line' });
  }
  // Kea: memfile leases (persisted CSV), UDP sockets on br0, logging at WARN (no line per lease).
  const conf = {
    Dhcp4: {
      'interfaces-config': { interfaces: ['br0'], 'dhcp-socket-type': 'udp' },
      'lease-database': { type: 'memfile', persist: true, name: join(d, 'kea-leases4.csv'), 'lfc-interval': 0 },
      'valid-lifetime': 3600,
      'renew-timer': 1800,
      'rebind-timer': 3150,
      ...(name === 'kea-mt' ? { 'multi-threading': { 'enable-multi-threading': true, 'thread-pool-size': 2, 'packet-queue-size': 256 } } : {}),
      'subnet4': [
        {
          id: 1,
          subnet: POOL_CIDR,
          pools: [{ pool: `${POOL_START} - ${POOL_END}` }],
          'option-data': [{ name: 'routers', data: GIADDR }, { name: 'domain-name-servers', data: SERVER_ADDR }],
          'next-server': SERVER_ADDR,
          'boot-file-name': 'undionly.kpxe',
        },
      ],
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: join(d, 'kea.log') }], severity: 'WARN' }],
    },
  };
  writeFileSync(join(d, 'kea.json'), JSON.stringify(conf, null, 2));
  return startProc(s, pinnedArgv(cpus, ['kea-dhcp4', '-c', join(d, 'kea.json')]), join(d, 'log'), { env: { KEA_PIDFILE_DIR: d, KEA_LOCKFILE_DIR: d } });
}

interface DhcpRun {
  server: string;
  n: number;
  report: PerfdhcpReport;
  /** ACKs perfdhcp received per second of the answer window (first datagram sent to last reply received). */
  leasesPerSec: number;
  /** Replies dropped at perfdhcp's own full socket buffer: the generator fell behind the server. */
  generatorDrops: number;
  /** perfdhcp's CPU use, in cores (CPU seconds / wall seconds). */
  generatorCores: number;
  /** The server's CPU use over the answer window (CPU seconds / window seconds). */
  serverCores: number;
  audit: LeaseAudit;
  /** The server's CPU time (every thread) during the run, ms per 1,000 leases stored: robust on a busy machine. */
  serverCpuMsPer1k: number;
  /** ACKs perfdhcp received for which the server's lease database holds no bound lease. */
  ackedNotStored: number;
  failed: number;
}

/** CPU seconds a running server process has used (all threads). */
function serverCpu(p: ChildProcess): number {
  try {
    return procCpuSeconds(readFileSync(`/proc/${p.pid}/stat`, 'utf8'), 'self');
  } catch {
    return NaN;
  }
}

/** Runs perfdhcp in the client namespace; returns its report and its CPU use. */
async function runPerfdhcp(run: PerfdhcpRun, cpus?: string): Promise<{ report: PerfdhcpReport; cores: number; leasesPerSec: number; windowSec: number; oldLeasesPerSec: number; generatorDrops: number }> {
  // A shell waits for perfdhcp, then prints its own /proc stat: cutime/cstime there are perfdhcp's CPU time.
  const script = '"$@"; rc=$?; read -r st < /proc/$$/stat; echo "STAT $st" >&2; exit $rc';
  const p = net!.spawn(net!.client, pinnedArgv(cpus, ['sh', '-c', script, 'sh', ...perfdhcpArgv(run)]));
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const t0 = performance.now();
  // The client namespace's UDP counters every 10 ms, read from /proc/<perfdhcp's pid>/net/snmp (its own
  // namespace's view, where only perfdhcp has UDP sockets; no process spawned): when perfdhcp started
  // sending, when the replies stopped, and how many its socket dropped (a generator that fell behind).
  const samples: { t: number; rx: number; tx: number; rcvbufErrors: number }[] = [];
  // Until `ip netns exec` has entered the namespace, /proc/PID/net is the host's: samples start once the
  // process's network namespace is the client's.
  const clientNs = statSync(`/run/netns/${net!.client.name}`).ino;
  const sample = () => {
    try {
      if (statSync(`/proc/${p.pid}/ns/net`).ino !== clientNs) return;
      const c = udpCounters(readFileSync(`/proc/${p.pid}/net/snmp`, 'utf8'));
      if (c) samples.push({ t: (performance.now() - t0) / 1000, ...c });
    } catch {
      /* exited */
    }
  };
  sample();
  const sampler = setInterval(sample, 10);
  // Generous: on a busy machine perfdhcp itself falls far behind its rate (100,000 clients took ~55 s at load 16).
  const limit = setTimeout(() => void net!.kill(p, 500), 120_000 + run.clients * 2);
  const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  clearTimeout(limit);
  clearInterval(sampler);
  const wall = (performance.now() - t0) / 1000;
  // perfdhcp exits 3 when packets were dropped: expected at a rate above the server's capacity.
  if (code !== 0 && code !== 3) throw new Error(`perfdhcp exited ${code}: ${(err || out).slice(-2000)}`);
  const st = /^STAT (.*)$/m.exec(err)?.[1];
  const report = parsePerfdhcp(out);
  // The server's window: perfdhcp's first datagram to the last reply received (±10 ms). perfdhcp's own Rate
  // divides by its exit wait too; wall time less the exit wait (the old figure) left out the time replies
  // kept coming during that wait but not the replies, crediting a server with a deep socket buffer (the
  // agent asks for 4 MiB, Kea keeps the kernel's default) with its backlog for free.
  const w = answerWindow(samples);
  const active = wall - run.exitWaitUs / 1e6;
  const window = w > 0 ? w : active;
  return { report, cores: st ? procCpuSeconds(st, 'children') / wall : NaN, leasesPerSec: report.request.received / window, windowSec: window, oldLeasesPerSec: report.request.received / active, generatorDrops: samples.length > 1 ? samples.at(-1)!.rcvbufErrors - samples[0]!.rcvbufErrors : NaN };
}

/** The agent's own DHCP counters (its STATS line at exit): sockets, journal batches, intake drops. */
function agentDhcpNote(p: ChildProcess): string {
  try {
    const st = JSON.parse(/^STATS (.*)$/m.exec((p as ChildProcess & { output: () => string }).output())?.[1] ?? '{}') as {
      dhcp?: { io?: string; received: number; intake: { shedDiscovers: number; shedOthers: number }; leases?: { journal?: { batches: number; appends: number } } };
    };
    const d = st.dhcp;
    if (!d) return '';
    const j = d.leases?.journal;
    return `; agent: ${d.io ?? '?'} sockets, ${d.received} datagrams, journal ${j ? `${j.batches} fsync batches (${(j.appends / j.batches).toFixed(1)} records each)` : '?'}, intake shed ${d.intake.shedDiscovers} DISCOVERs / ${d.intake.shedOthers} others`;
  } catch {
    return '';
  }
}

async function dhcpPhase(a: Args): Promise<string[]> {
  const lines: string[] = [];
  const runs: DhcpRun[] = [];
  console.log(`\n## DHCP: perfdhcp (Kea's generator, relay mode, giaddr ${GIADDR}) at ${a.dhcpRate} DORA/s offered, servers in turn on ${SERVER_ADDR}:67, fresh lease DB per run`);
  for (const n of a.dhcpN) {
    for (let round = 0; round < a.dhcpRounds; round++) {
      const order = a.dhcpServers.map((_, i, xs) => xs[(i + round) % xs.length]!);
      for (const server of order) {
        const run = `${server}-${n}-${round}`;
        const load = loadavg()[0]!.toFixed(1);
        const p = await startDhcpServer(server, run, a.serverCpus || undefined);
        let res: Awaited<ReturnType<typeof runPerfdhcp>>;
        let cpu = NaN;
        try {
          const cpu0 = serverCpu(p);
          res = await runPerfdhcp({ giaddr: GIADDR, server: SERVER_ADDR, clients: n, rate: a.dhcpRate, dropTimeSec: 4, exitWaitUs: 4_000_000, baseMac: '02:42:00:00:00:00', threads: a.perfdhcpThreads }, a.generatorCpus || undefined);
          cpu = serverCpu(p) - cpu0;
        } finally {
          await net!.kill(p, 10_000);
        }
        // Audit what the server stored (after it exited: Kea's CSV is flushed, the agent's journal closed).
        const d = join(dir, 'dhcp', run);
        const audit = auditLeases(server.startsWith('underlay') ? agentBound(readFileSync(join(d, 'leases.jsonl'), 'utf8')) : keaBound(readFileSync(join(d, 'kea-leases4.csv'), 'utf8')));
        const r = res.report;
        // perfdhcp now and then draws a client twice (it then reports the second ACK as a non-unique address):
        // those ACKs are for a MAC already counted.
        const ackedNotStored = Math.max(0, r.request.received - r.request.nonUnique - audit.boundMacs);
        const failed = r.request.rejectedLeases + ackedNotStored + audit.duplicates.length + audit.macsWithSeveral;
        const serverCpuMsPer1k = (cpu * 1000) / (audit.boundMacs / 1000);
        const serverCores = cpu / res.windowSec;
        runs.push({ server, n, report: r, leasesPerSec: res.leasesPerSec, generatorDrops: res.generatorDrops, generatorCores: res.cores, serverCores, audit, serverCpuMsPer1k, ackedNotStored, failed });
        console.log(
          `  ${server.padEnd(9)} n=${n} round ${round + 1} (load ${load}): ${f0(res.leasesPerSec)} leases/s over ${res.windowSec.toFixed(2)} s (before session 11: ${f0(res.oldLeasesPerSec)}/s over the run less its exit wait); ACKs ${r.request.received}, stored ${audit.boundMacs}, ` +
            `failed ${failed}, duplicates ${audit.duplicates.length}, non-unique (perfdhcp) ${r.request.nonUnique}, unanswered ${n - r.request.received} (offered above capacity), ` +
            `delay DO ${f1(r.discover.avgDelayMs)} / RA ${f1(r.request.avgDelayMs)} ms; server CPU ${f0(serverCpuMsPer1k)} ms per 1,000 leases; CPU share: server ${serverCores.toFixed(2)}, perfdhcp ${res.cores.toFixed(2)} cores; replies dropped at perfdhcp's full socket buffer ${res.generatorDrops}` +
            (server.startsWith('underlay') ? agentDhcpNote(p) : ''),
        );
      }
    }
  }
  lines.push(
    `Offered ${a.dhcpRate} DORA/s (open loop; what a server cannot take is unanswered, not failed). failed = NAKs + ACKs without a stored lease + duplicate addresses (from the servers' lease files). Servers pinned to CPU ${a.serverCpus || '(none)'}, perfdhcp to CPU ${a.generatorCpus || '(none)'} (taskset), perfdhcp -g ${a.perfdhcpThreads}; leases/s = ACKs / the answer window (perfdhcp's first datagram to the last reply received, from the client namespace's UDP counters sampled every 10 ms); server cores over that window (perfdhcp's over its whole run, its exit wait included, where it polls). Kea's memfile does not fsync; the agent fsyncs every lease before its ACK.`,
    '',
    '| clients | server | leases/s median | min..max | ACKs (stored) | failed | duplicate addresses | server CPU ms / 1,000 leases | server cores | perfdhcp cores | runs |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  );
  const med = (server: string, n: number) => median(runs.filter((r) => r.server === server && r.n === n).map((r) => r.leasesPerSec));
  for (const n of a.dhcpN) {
    for (const server of a.dhcpServers) {
      const rs = runs.filter((r) => r.server === server && r.n === n);
      const l = rs.map((r) => r.leasesPerSec);
      lines.push(`| ${n} | ${server} | ${f0(median(l))} | ${f0(Math.min(...l))}..${f0(Math.max(...l))} | ${rs.map((r) => `${r.report.request.received} (${r.audit.boundMacs})`).join(', ')} | ${rs.map((r) => r.failed).join(', ')} | ${rs.map((r) => r.audit.duplicates.length).join(', ')} | ${f0(median(rs.map((r) => r.serverCpuMsPer1k)))} | ${rs.map((r) => r.serverCores.toFixed(2)).join(', ')} | ${rs.map((r) => r.generatorCores.toFixed(2)).join(', ')} | ${rs.length} |`);
    }
  }
  lines.push('');
  for (const n of a.dhcpN) {
    if (!a.dhcpServers.includes('underlay')) break;
    const ours = med('underlay', n);
    const kea = med('kea', n);
    const parts = [`Kea single-threaded's own figure ${f0(kea)} leases/s (published ${KEA_PUBLISHED_ST}/s)`];
    // A ratio only when Kea single-threaded kept its core busy and reached the floor: then the server, not
    // perfdhcp, was the limit (the multi-threaded ratio leans on the same evidence).
    const cores = (server: string, k: 'serverCores' | 'generatorCores') => median(runs.filter((r) => r.server === server && r.n === n).map((r) => r[k]));
    // A server whose replies perfdhcp's socket dropped (more than 1 % of its ACKs) was measured by the generator.
    const behind = a.dhcpServers.filter((sv) => runs.some((r) => r.server === sv && r.n === n && r.generatorDrops > 0.01 * r.report.request.received));
    const ref = a.dhcpServers.includes('kea')
      ? referenceVerdict({ name: 'Kea', leasesPerSec: kea, serverCores: cores('kea', 'serverCores'), generatorCores: cores('kea', 'generatorCores'), floor: a.keaFloor })
      : { ok: false, text: 'no Kea run' };
    if (ref.ok && behind.includes('kea')) Object.assign(ref, { ok: false, text: "NO RATIO: perfdhcp's own socket dropped Kea's replies (the generator was the limit)" });
    parts.push(ref.text);
    if (behind.length) parts.push(`GENERATOR-BOUND for ${behind.join(', ')}: perfdhcp's own socket dropped replies (${behind.map((sv) => runs.filter((r) => r.server === sv && r.n === n).map((r) => r.generatorDrops).join('/')).join(', ')}), so those leases/s are perfdhcp's reading rate, not the server's`);
    if (a.dhcpServers.includes('kea')) parts.push(`underlay/kea ${ref.ok ? ratioOrRefusal(ours, kea, 'Kea', a.keaFloor) : 'NO RATIO (see above)'}`);
    if (a.dhcpServers.includes('kea-mt')) parts.push(`underlay/kea-mt ${ref.ok ? ratioOrRefusal(ours, med('kea-mt', n), `Kea 2 threads (CPU ${a.serverCpus || 'any'})`, 0) : 'NO RATIO (see above)'}`);
    const cpu = (server: string) => median(runs.filter((r) => r.server === server && r.n === n).map((r) => r.serverCpuMsPer1k));
    if (a.dhcpServers.includes('underlay-b')) parts.push(`underlay/underlay-b ${(ours / med('underlay-b', n)).toFixed(2)}x leases/s, CPU per lease ${(cpu('underlay') / cpu('underlay-b')).toFixed(2)}x`);
    if (a.dhcpServers.includes('kea')) parts.push(`server CPU per lease underlay/kea ${(cpu('underlay') / cpu('kea')).toFixed(2)}x (lower is better; holds on a busy machine too)`);
    lines.push(`- ${n} clients: ${parts.join('; ')}`);
  }
  return lines;
}

// ---- TFTP -----------------------------------------------------------------------------------------------

async function tftpPhase(a: Args): Promise<string[]> {
  const size = a.tftpMiB * MiB;
  const file = 'bench.bin';
  const sha256 = createHash('sha256').update(readFileSync(join(dir, 'tftp', file))).digest('hex');
  const ours = await startProc(net!.server, [process.execPath, join(here, 'agent.js'), JSON.stringify(agentSpec({ tftpPort: 69, httpPort: 8091 }))], join(dir, 'tftp-agent.log'), { ready: 'line' });
  const hpa = await startProc(net!.server, ['/usr/sbin/in.tftpd', '-L', '-s', join(dir, 'tftp'), '-a', `${SERVER_ADDR}:6969`], join(dir, 'tftpd-hpa.log'));
  const servers = [
    { name: 'underlay', port: 69 },
    { name: 'tftpd-hpa', port: 6969 },
  ];
  const configs = [
    { name: 'blksize 1468', options: { blksize: 1468 } as Record<string, number> },
    { name: 'blksize 1468 windowsize 8', options: { blksize: 1468, windowsize: 8 } },
    { name: 'blksize 1468 windowsize 16', options: { blksize: 1468, windowsize: 16 } },
  ];
  console.log(`\n## TFTP: ${a.tftpMiB} MiB file, atftp client in the client namespace, ${a.tftpRounds} rounds`);
  const lines: string[] = [];
  try {
    const granted = await runClient<Record<string, Record<string, string>>>(
      'tftp',
      { probe: servers.flatMap((s) => configs.map((c) => ({ key: `${s.name}|${c.name}`, host: SERVER_ADDR, port: s.port, file, options: c.options }))) },
      30_000,
    );
    const runs: TftpSpec['runs'] = [];
    for (let round = 0; round < a.tftpRounds; round++) {
      for (const c of configs) {
        const order = round % 2 ? [...servers].reverse() : servers;
        for (const s of order) runs.push({ key: `${s.name}|${c.name}`, host: SERVER_ADDR, port: s.port, file, options: c.options });
      }
    }
    const outDir = join(dir, 'out');
    mkdirSync(outDir, { recursive: true });
    const res = await runClient<{ key: string; mbps: number; ms: number; clientCpuSec: number }[]>('tftp', { runs, out: outDir, size, sha256 } satisfies TftpSpec, 1_200_000);
    lines.push('| options | server | windowsize granted | MB/s median | min..max | runs |', '|---|---|---|---|---|---|');
    const med = new Map<string, number>();
    for (const c of configs) {
      for (const s of servers) {
        const k = `${s.name}|${c.name}`;
        const xs = res.filter((r) => r.key === k).map((r) => r.mbps);
        med.set(k, median(xs));
        lines.push(`| ${c.name} | ${s.name} | ${granted[k]?.windowsize ?? '-'} | ${f1(median(xs))} | ${f1(Math.min(...xs))}..${f1(Math.max(...xs))} | ${xs.length} |`);
      }
    }
    lines.push('');
    // The reference must be the limit: atftp's CPU during the tftpd-hpa transfers.
    const ref = res.filter((r) => r.key.startsWith('tftpd-hpa|'));
    lines.push(`- ${clientVerdict('atftp (during the tftpd-hpa runs)', ref.reduce((x, r) => x + r.clientCpuSec, 0), ref.reduce((x, r) => x + r.ms, 0) / 1000).text}`);
    const lock = med.get('tftpd-hpa|blksize 1468')!;
    for (const c of configs) {
      lines.push(`- ${c.name}: underlay/tftpd-hpa ${(med.get(`underlay|${c.name}`)! / med.get(`tftpd-hpa|${c.name}`)!).toFixed(2)}x (same options)${c.options.windowsize ? `, underlay windowed / tftpd-hpa lock-step ${(med.get(`underlay|${c.name}`)! / lock).toFixed(2)}x` : ''}`);
    }
  } finally {
    await net!.kill(ours);
    await net!.kill(hpa);
  }
  return lines;
}

// ---- HTTP -----------------------------------------------------------------------------------------------

async function httpPhase(a: Args): Promise<string[]> {
  const ours = await startProc(net!.server, [process.execPath, join(here, 'agent.js'), JSON.stringify(agentSpec({ tftpPort: 6971, httpPort: 8080 }))], join(dir, 'http-agent.log'), { ready: 'line' });
  const nd = join(dir, 'http-nginx');
  mkdirSync(nd, { recursive: true });
  writeFileSync(join(nd, 'nginx.conf'), nginxConf(nd, join(dir, 'boot'), 8081));
  const ref = 'nginx';
  const bb = await startProc(net!.server, ['nginx', '-c', join(nd, 'nginx.conf'), '-p', nd, '-e', join(nd, 'nginx-error.log')], join(nd, 'nginx.log'));
  const files = (prefix: string) => [
    { path: `${prefix}/vmlinuz`, size: a.kernelMiB * MiB },
    { path: `${prefix}/initrd.img`, size: a.initrdMiB * MiB },
  ];
  const servers = [
    { name: 'underlay', base: `http://${SERVER_ADDR}:8080`, prefix: '/files' },
    { name: ref, base: `http://${SERVER_ADDR}:8081`, prefix: '/files' },
  ];
  console.log(`\n## HTTP: kernel ${a.kernelMiB} MiB + initrd ${a.initrdMiB} MiB per pair, node http client in the client namespace`);
  const runs: HttpSpec['runs'] = [];
  for (const c of a.httpConcurrency) {
    for (const s of c % 2 ? servers : [...servers].reverse()) runs.push({ key: `${s.name}|${c}`, base: s.base, files: files(s.prefix), concurrency: c, pairs: Math.max(4, 2 * c) });
  }
  const lines: string[] = [];
  try {
    // Warm-up (page cache, JIT) not counted.
    await runClient('http', { runs: servers.map((s) => ({ key: 'warm', base: s.base, files: files(s.prefix), concurrency: 2, pairs: 2 })) }, 120_000);
    const res = await runClient<{ key: string; mbps: number; reqPerSec: number; requests: number; ms: number; clientCpuSec: number }[]>('http', { runs } satisfies HttpSpec, 1_200_000);
    lines.push('| concurrency | server | MB/s | requests/s | requests |', '|---|---|---|---|---|');
    for (const c of a.httpConcurrency) {
      for (const s of servers) {
        const r = res.find((x) => x.key === `${s.name}|${c}`)!;
        lines.push(`| ${c} | ${s.name} | ${f1(r.mbps)} | ${f1(r.reqPerSec)} | ${r.requests} |`);
      }
    }
    lines.push('');
    for (const c of a.httpConcurrency) {
      const u = res.find((x) => x.key === `underlay|${c}`)!;
      const b = res.find((x) => x.key === `${ref}|${c}`)!;
      lines.push(`- concurrency ${c}: underlay/${ref} ${(u.mbps / b.mbps).toFixed(2)}x; ${clientVerdict(`the HTTP client (during ${ref})`, b.clientCpuSec, b.ms / 1000).text}`);
    }
  } finally {
    await net!.kill(ours);
    await net!.kill(bb);
  }
  return lines;
}

// ---- storm ----------------------------------------------------------------------------------------------

type Q = { p50: number; p99: number; max: number };
interface StormOutcome {
  n: number; ok: number; failed: number; duplicates: number; distinctAddresses: number; totalMs: number; dhcp: Q; tftp: Q; http: Q; total: Q;
  dhcpResends: number; reboots: number; busy503: number; scriptRetries: number; bytes: number; errors: string[]; cpuSec: number; wallSec: number;
  busiestThreadCores: number; elu: { main: number; workers: number[] }; dhcpLostInRow: number[]; udpDrops: Record<string, number>;
}

/** nginx serving `root` under /files/ on SERVER_ADDR:port, everything it writes kept under `d`. */
function nginxConf(d: string, root: string, port: number): string {
  return [
    'daemon off;', 'master_process on;', 'worker_processes 2;', 'user root;', `pid ${join(d, 'nginx.pid')};`, `error_log ${join(d, 'nginx-error.log')} warn;`,
    'events { worker_connections 20000; }',
    'http {',
    '  access_log off; sendfile on; tcp_nopush on; keepalive_timeout 5s; default_type application/octet-stream;',
    `  client_body_temp_path ${d}/cb; proxy_temp_path ${d}/px; fastcgi_temp_path ${d}/fc; uwsgi_temp_path ${d}/uw; scgi_temp_path ${d}/sc;`,
    `  server { listen ${SERVER_ADDR}:${port} backlog=16384; location /files/ { alias ${root}/; } }`,
    '}',
  ].join('\n');
}

/** Starts the storm's servers: the agent, or Kea + tftpd-hpa + nginx. Returns them and where the leases go. */
async function startStormServers(kind: string, d: string): Promise<{ procs: ChildProcess[]; leases: () => ReturnType<typeof auditLeases> }> {
  if (kind === 'underlay' || kind === 'underlay-b') {
    const p = await startProc(net!.server, [process.execPath, kind === 'underlay' ? join(here, 'agent.js') : agentB, JSON.stringify(agentSpec({ leaseFile: join(d, 'leases.jsonl'), tftpPort: 69, httpPort: 8080 }))], join(d, 'agent.log'), { ready: 'line' });
    return { procs: [p], leases: () => auditLeases(agentBound(readFileSync(join(d, 'leases.jsonl'), 'utf8'))) };
  }
  const run = `storm-kea-${Date.now()}`;
  const kea = await startDhcpServer('kea', run);
  const procs = [kea];
  try {
    procs.push(await startProc(net!.server, ['/usr/sbin/in.tftpd', '-L', '-s', join(dir, 'tftp'), '-a', `${SERVER_ADDR}:69`], join(d, 'tftpd-hpa.log')));
    writeFileSync(join(d, 'nginx.conf'), nginxConf(d, join(dir, 'boot'), 8080));
    procs.push(await startProc(net!.server, ['nginx', '-c', join(d, 'nginx.conf'), '-p', d, '-e', join(d, 'nginx-error.log')], join(d, 'nginx.log')));
  } catch (e) {
    for (const p of procs) await net!.kill(p);
    throw e;
  }
  return { procs, leases: () => auditLeases(keaBound(readFileSync(join(dir, 'dhcp', run, 'kea-leases4.csv'), 'utf8'))) };
}

async function stormPhase(a: Args): Promise<string[]> {
  const tftpSize = statSync(join(dir, 'tftp', 'undionly.kpxe')).size;
  console.log(`\n## Storm: ${a.stormN} machines at once: DORA, TFTP undionly.kpxe (${tftpSize} B, blksize 1468), HTTP kernel ${a.kernelMiB} MiB + initrd ${a.stormInitrdMiB} MiB; servers in turn: ${a.stormServers.join(', ')}`);
  const lines = [
    '| servers | machines | succeeded | duplicate addresses (lease file) | total s | per-machine boot p50 / p99 / max s | DHCP p50 / p99 ms | TFTP p50 / p99 ms | HTTP p50 / p99 s | GB moved | DHCP resends / reboots / 503s / script retries | client cores (busiest thread) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const notes: string[] = [];
  const totals = new Map<string, number>();
  for (const [i, kind] of a.stormServers.entries()) {
    const d = join(dir, `storm-${kind}`);
    mkdirSync(d, { recursive: true });
    const spec: StormSpec = {
      server: SERVER_ADDR,
      relay: GIADDR,
      n: a.stormN,
      macPrefix: 0x7000 + i * 0x100,
      httpBase: `http://${SERVER_ADDR}:8080`,
      tftpPort: 69,
      tftpSize,
      kernel: { path: '/files/vmlinuz', size: a.kernelMiB * MiB },
      initrd: { path: '/files/initrd-storm.img', size: a.stormInitrdMiB * MiB },
      blksize: 1468,
      dhcpScheduleMs: [4000, 8000, 16000, 32000],
      bootAttempts: 3,
      workers: a.stormWorkers,
    };
    const load = loadavg()[0]!.toFixed(1);
    const { procs, leases } = await startStormServers(kind, d);
    let r: StormOutcome;
    let stats = '';
    try {
      r = await runClient<StormOutcome>('storm', spec, 1_800_000 + a.stormN * 100);
    } finally {
      for (const p of procs) await net!.kill(p, 10_000);
      if (kind !== 'reference') stats = /^STATS (.*)$/m.exec((procs[0] as ChildProcess & { output: () => string }).output())?.[1] ?? '{}';
    }
    const audit = leases();
    totals.set(kind, r.totalMs);
    const name = kind === 'underlay' ? 'agent' : kind === 'underlay-b' ? 'agent B' : 'Kea + tftpd-hpa + nginx';
    console.log(`  ${name} (load ${load}): ${r.ok}/${r.n} in ${(r.totalMs / 1000).toFixed(1)} s, duplicates ${audit.duplicates.length} (lease file) / ${r.duplicates} (client)`);
    // Printed now too: a run cut short later (deadline, signal) still shows why this server's machines failed.
    if (r.errors.length) console.log(`    failures: ${r.errors.join('; ')}`);
    console.log(`    DHCP resends ${r.dhcpResends}, reboots ${r.reboots}, 503s ${r.busy503}, script retries ${r.scriptRetries}; client ${(r.cpuSec / r.wallSec).toFixed(2)} cores, busiest thread ${r.busiestThreadCores.toFixed(2)}; agent ${stats || '-'}`);
    console.log(`    machines by boots lost to DHCP in a row (0, 1, 2, 3 …): ${JSON.stringify(r.dhcpLostInRow)}; client namespace UDP drops by port ${JSON.stringify(r.udpDrops)}`);
    lines.push(
      `| ${name} | ${r.n} | ${r.ok} | ${audit.duplicates.length} (client: ${r.duplicates}) | ${(r.totalMs / 1000).toFixed(1)} | ${(r.total.p50 / 1000).toFixed(1)} / ${(r.total.p99 / 1000).toFixed(1)} / ${(r.total.max / 1000).toFixed(1)} | ${f0(r.dhcp.p50)} / ${f0(r.dhcp.p99)} | ${f0(r.tftp.p50)} / ${f0(r.tftp.p99)} | ${(r.http.p50 / 1000).toFixed(1)} / ${(r.http.p99 / 1000).toFixed(1)} | ${(r.bytes / 1e9).toFixed(1)} | ${r.dhcpResends} / ${r.reboots} / ${r.busy503} / ${r.scriptRetries} | ${(r.cpuSec / r.wallSec).toFixed(2)} (${r.busiestThreadCores.toFixed(2)}) |`,
    );
    if (r.errors.length) notes.push(`- ${name} failures: ${r.errors.join('; ')}`);
    // Each client thread (DHCP on the main thread, TFTP + HTTP on the workers) is judged on its own: one at
    // ≥ 0.8 of a core would be the limit. Event-loop utilisation says the same from inside each thread.
    const elu = [r.elu.main, ...r.elu.workers].map((x) => x.toFixed(2)).join(' / ');
    notes.push(`- ${name}: ${clientVerdict(`the storm client's busiest thread (of ${r.elu.workers.length + 1}; ${(r.cpuSec / r.wallSec).toFixed(2)} cores in all, event-loop use main / workers ${elu})`, r.busiestThreadCores, 1).text}`);
    if (kind !== 'reference') {
      const st = JSON.parse(stats) as { dhcp?: { sent?: Record<string, number>; leases?: { bound: number }; intake?: unknown }; tftp?: { completed: number; retransmits: number; errors: number; shed?: number }; files?: { admitted: number; refused: number } };
      notes.push(`- ${name} counters: DHCP sent ${JSON.stringify(st.dhcp?.sent ?? {})}, intake ${JSON.stringify(st.dhcp?.intake ?? {})}, bound leases ${st.dhcp?.leases?.bound ?? '?'}; TFTP completed ${st.tftp?.completed ?? '?'}, retransmits ${st.tftp?.retransmits ?? '?'}, errors ${st.tftp?.errors ?? '?'}, RRQs shed ${st.tftp?.shed ?? '?'}; HTTP files admitted ${st.files?.admitted ?? '?'}, 503 ${st.files?.refused ?? '?'}`);
    }
  }
  if (totals.has('underlay') && totals.has('reference')) notes.push(`- storm time agent / reference: ${(totals.get('underlay')! / totals.get('reference')!).toFixed(2)}x (lower is better)`);
  if (totals.has('underlay') && totals.has('underlay-b')) notes.push(`- storm time agent / agent B: ${(totals.get('underlay')! / totals.get('underlay-b')!).toFixed(2)}x (lower is better)`);
  return [...lines, '', ...notes];
}

// ---- main -----------------------------------------------------------------------------------------------

function makeFile(path: string, bytes: number): void {
  // Random content (sync; a few hundred MiB at most).
  const parts: Buffer[] = [];
  for (let left = bytes; left > 0; left -= MiB) parts.push(randomBytes(Math.min(MiB, left)));
  writeFileSync(path, Buffer.concat(parts));
  chmodSync(path, 0o644);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  agentB = a.agentB ?? '';
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces, port 67/69)');
  for (const c of ['kea-dhcp4', 'perfdhcp', 'in.tftpd', 'nginx', 'atftp']) {
    try {
      execFileSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${c} missing (Debian: kea-dhcp4-server kea-admin tftpd-hpa nginx-light atftp)`);
    }
  }
  if (!existsSync(join(IPXE_DIR, 'undionly.kpxe'))) throw new Error(`${IPXE_DIR}/undionly.kpxe missing (Debian: ipxe)`);
  const deadline = setTimeout(() => {
    console.error(`bench: deadline of ${a.deadlineMin} min reached; cleaning up`);
    cleanup();
    process.exit(1);
  }, a.deadlineMin * 60_000);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanup();
      process.exit(130);
    });
  }
  process.once('exit', cleanup);
  // Lease databases and served files on the disk-backed /tmp (the agent's journal fsyncs there).
  dir = mkdtempSync(join(tmpdir(), 'ulboot-'));
  chmodSync(dir, 0o755);
  for (const sub of ['tftp', 'boot', 'dhcp', 'out']) {
    mkdirSync(join(dir, sub));
    chmodSync(join(dir, sub), 0o755);
  }
  copyFileSync(join(IPXE_DIR, 'undionly.kpxe'), join(dir, 'tftp', 'undionly.kpxe'));
  chmodSync(join(dir, 'tftp', 'undionly.kpxe'), 0o644);
  if (a.only.has('tftp')) makeFile(join(dir, 'tftp', 'bench.bin'), a.tftpMiB * MiB);
  makeFile(join(dir, 'boot', 'vmlinuz'), a.kernelMiB * MiB);
  if (a.only.has('http')) makeFile(join(dir, 'boot', 'initrd.img'), a.initrdMiB * MiB);
  if (a.only.has('storm')) makeFile(join(dir, 'boot', 'initrd-storm.img'), a.stormInitrdMiB * MiB);

  net = new BenchNet();
  const versions = [
    `node ${process.version}`,
    `kea-dhcp4 ${version(['kea-dhcp4', '-V'], /^[\d.]+/m)}`,
    `perfdhcp ${version(['perfdhcp', '-v'], /[\d.]+/)}`,
    `nginx ${version(['nginx', '-v'], /(?<=nginx\/)[\d.]+/)}`,
    `tftpd-hpa ${version(['/usr/sbin/in.tftpd', '-V'], /(?<=tftp-hpa )[\d.]+/)}`,
    `atftp ${version(['atftp', '--version'], /[\d.]+/)}`,
  ];
  console.log(`boot bench: ${versions.join(', ')}; ${execFileSync('nproc', { encoding: 'utf8' }).trim()} CPUs; namespaces ${net.server.name}, ${net.client.name}; files in ${dir}`);
  const report: string[] = [];
  const t0 = performance.now();
  if (a.only.has('dhcp')) report.push('### DHCP', ...(await dhcpPhase(a)), '');
  if (a.only.has('tftp')) report.push('### TFTP', ...(await tftpPhase(a)), '');
  if (a.only.has('http')) report.push('### HTTP', ...(await httpPhase(a)), '');
  if (a.only.has('storm')) report.push('### Storm', ...(await stormPhase(a)), '');
  console.log(`\n${report.join('\n')}\nbench wall time ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  clearTimeout(deadline);
}

main().then(
  () => {
    cleanup();
    process.exit(0);
  },
  (e: Error) => {
    console.error(`bench failed: ${e.stack ?? e.message}`);
    cleanup();
    process.exit(1);
  },
);
