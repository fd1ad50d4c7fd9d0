/**
 * The simulated machines: runs inside the bench's client namespace (`ip netns exec NS node client.js MODE JSON`)
 * and prints one JSON line with its results on stdout. Modes:
 *   tftp   atftp downloads (timed here, so no `ip netns exec` start-up is counted)
 *   http   kernel + initrd GETs with C concurrent workers
 *   storm  N machines booting at once: DORA (main thread, PXE ROM timeouts), then on worker threads TFTP of
 *          the boot file the server named and HTTP kernel + initrd with the firmware's retries (storm-machine.ts)
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Agent } from 'node:http';
import { Worker } from 'node:worker_threads';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { udpDrops } from './udp-drops.js';
import { tftpGet } from '../tftp-client.js';
import { httpGet } from './http-get.js';
import type { AfterDhcp, FirmwareResult, FirmwareSpec } from './storm-machine.js';
import { procCpuSeconds } from './perfdhcp.js';
import { RelayDhcpClient, duplicateAddresses, macFor, type DoraResult } from './dhcp-client.js';

export const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};

async function waitReady(c: RelayDhcpClient, prefix: number): Promise<{ ms: number; probe: DoraResult }> {
  const t0 = performance.now();
  for (let i = 0; i < 60; i++) {
    const r = await c.dora(macFor(prefix, 0xffff00 + i));
    if (r.ok) return { ms: performance.now() - t0, probe: r };
  }
  throw new Error('DHCP server never answered the readiness probe');
}

// ---- TFTP -----------------------------------------------------------------------------------------------

export interface TftpSpec {
  /** Only ask each server which options it grants (OACK, then abort like a UEFI size probe). */
  probe?: { key: string; host: string; port: number; file: string; options: Record<string, number> }[];
  runs: { key: string; host: string; port: number; file: string; options: Record<string, number> }[];
  out: string;
  size: number;
  sha256: string;
}

function atftp(args: string[], cwd: string): Promise<{ ok: boolean; ms: number; stderr: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    execFile('atftp', args, { cwd, timeout: 300_000 }, (err, _o, stderr) => resolve({ ok: !err, ms: performance.now() - t0, stderr: String(stderr) }));
  });
}

async function tftp(spec: TftpSpec): Promise<unknown> {
  if (spec.probe) {
    const granted: Record<string, Record<string, string>> = {};
    for (const p of spec.probe) {
      for (let i = 0; ; i++) {
        try {
          const r = await tftpGet({ host: p.host, port: p.port, file: p.file, options: { ...p.options, tsize: 0 }, abortAfterOack: { code: 8, message: 'probe' }, timeoutMs: 250, retries: 2 });
          granted[p.key] = r.oack ?? {};
          break;
        } catch (e) {
          if (i >= 20) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    return granted;
  }
  const out: { key: string; mbps: number; ms: number; clientCpuSec: number }[] = [];
  const checked = new Set<string>();
  // atftp's CPU time: this process's waited-for children, from /proc.
  const childCpu = () => procCpuSeconds(readFileSync('/proc/self/stat', 'utf8'), 'children');
  for (const r of spec.runs) {
    const local = `${spec.out}/dl.bin`;
    rmSync(local, { force: true });
    const opts = Object.entries(r.options).flatMap(([k, v]) => ['--option', `${k} ${v}`]);
    const c0 = childCpu();
    const res = await atftp([...opts, '-g', '-r', r.file, '-l', local, r.host, String(r.port)], spec.out);
    const clientCpuSec = childCpu() - c0;
    if (!res.ok) throw new Error(`${r.key}: atftp failed: ${res.stderr.trim()}`);
    const size = statSync(local).size;
    if (size !== spec.size) throw new Error(`${r.key}: got ${size} bytes, want ${spec.size}`);
    if (!checked.has(r.key)) {
      checked.add(r.key);
      if (createHash('sha256').update(readFileSync(local)).digest('hex') !== spec.sha256) throw new Error(`${r.key}: sha256 mismatch`);
    }
    out.push({ key: r.key, mbps: spec.size / 1e6 / (res.ms / 1000), ms: res.ms, clientCpuSec });
  }
  rmSync(`${spec.out}/dl.bin`, { force: true });
  return out;
}

// ---- HTTP -----------------------------------------------------------------------------------------------

export interface HttpSpec {
  runs: { key: string; base: string; files: { path: string; size: number }[]; concurrency: number; pairs: number }[];
}

async function http(spec: HttpSpec): Promise<{ key: string; mbps: number; reqPerSec: number; ms: number; requests: number; clientCpuSec: number }[]> {
  const out = [];
  for (const r of spec.runs) {
    const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
    const cpu0 = process.cpuUsage();
    let next = 0;
    let bytes = 0;
    let requests = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: r.concurrency }, async () => {
        while (next < r.pairs) {
          next++;
          for (const f of r.files) {
            const g = await httpGet(`${r.base}${f.path}`, agent);
            if (g.status !== 200 || g.bytes !== f.size) throw new Error(`${r.key}: ${f.path}: status ${g.status}, ${g.bytes} bytes, want ${f.size}`);
            bytes += g.bytes;
            requests++;
          }
        }
      }),
    );
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    agent.destroy();
    out.push({ key: r.key, mbps: bytes / 1e6 / (ms / 1000), reqPerSec: requests / (ms / 1000), ms, requests, clientCpuSec: (cpu.user + cpu.system) / 1e6 });
  }
  return out;
}

// ---- storm ----------------------------------------------------------------------------------------------

export interface StormSpec extends FirmwareSpec {
  relay: string;
  n: number;
  macPrefix: number;
  /** The PXE ROM's DHCP timeouts, ms (4, 8, 16, 32 s). */
  dhcpScheduleMs: number[];
  /** Whole boots a machine tries (the boot script's `reboot` after its last retry, or PXE again). */
  bootAttempts: number;
  /** Worker threads doing TFTP and HTTP (DHCP stays on the main thread, one relay socket). */
  workers: number;
}

export interface MachineResult {
  ok: boolean;
  error?: string;
  address?: string;
  mac: string;
  dhcpMs: number;
  tftpMs: number;
  httpMs: number;
  totalMs: number;
  dhcpResends: number;
  boots: number;
  /** Most boots in a row that got no DHCP answer (the PXE ROM gave up). */
  dhcpLostInRow: number;
  busy: number;
  scriptRetries: number;
}



/** CPU seconds of every thread of this process, by thread id, from /proc. */
function threadCpu(): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of readdirSync('/proc/self/task')) {
    try {
      m.set(t, procCpuSeconds(readFileSync(`/proc/self/task/${t}/stat`, 'utf8'), 'self'));
    } catch {
      /* thread gone */
    }
  }
  return m;
}

async function storm(spec: StormSpec) {
  const c = new RelayDhcpClient({ relay: spec.relay, server: spec.server, scheduleMs: spec.dhcpScheduleMs });
  await c.open();
  // Same readiness rule as the DHCP runs: the clock starts once the server answers.
  const ready = await waitReady(c, spec.macPrefix);
  const workers = Array.from({ length: spec.workers }, () => new Worker(new URL('./storm-worker.js', import.meta.url), { workerData: spec satisfies FirmwareSpec }));
  const waiting = new Map<number, (r: FirmwareResult) => void>();
  for (const w of workers) w.on('message', (m: { id?: number; result?: FirmwareResult }) => m.id !== undefined && waiting.get(m.id)?.(m.result!));
  let nextId = 0;
  const firmware = (i: number, job: AfterDhcp) =>
    new Promise<FirmwareResult>((resolve) => {
      const id = nextId++;
      waiting.set(id, (r) => {
        waiting.delete(id);
        resolve(r);
      });
      workers[i % workers.length]!.postMessage({ id, job });
    });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const threads0 = threadCpu();
  const elu0 = performance.eventLoopUtilization();
  const machine = async (i: number): Promise<MachineResult> => {
    const mac = macFor(spec.macPrefix, i);
    const start = performance.now();
    const r: MachineResult = { ok: false, mac, dhcpMs: 0, tftpMs: 0, httpMs: 0, totalMs: 0, dhcpResends: 0, boots: 0, dhcpLostInRow: 0, busy: 0, scriptRetries: 0 };
    let lost = 0;
    while (!r.ok && r.boots < spec.bootAttempts) {
      r.boots++;
      const t = performance.now();
      const d = await c.dora(mac);
      r.dhcpMs += performance.now() - t;
      r.dhcpResends += d.resends;
      if (!d.ok) {
        r.error = `dhcp: ${d.error}`;
        r.dhcpLostInRow = Math.max(r.dhcpLostInRow, ++lost);
        continue; // the PXE ROM gives up; the BIOS boots the next device, which is PXE again
      }
      lost = 0;
      r.address = d.address;
      if (!d.bootFile) {
        r.error = 'dhcp: no boot file in the ACK';
        break;
      }
      const f = await firmware(i, { bootFile: d.bootFile, ...(d.nextServer ? { nextServer: d.nextServer } : {}) });
      r.tftpMs += f.tftpMs;
      r.httpMs += f.httpMs;
      r.busy += f.busy;
      r.scriptRetries += f.scriptRetries;
      r.ok = f.ok;
      if (f.ok) delete r.error;
      else r.error = f.error;
    }
    r.totalMs = performance.now() - start;
    return r;
  };
  const results = await Promise.all(Array.from({ length: spec.n }, (_, i) => machine(i)));
  const totalMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const threads1 = threadCpu();
  const mainElu = performance.eventLoopUtilization(elu0).utilization;
  const workerElu = await Promise.all(
    workers.map(
      (w) =>
        new Promise<number>((resolve) => {
          w.on('message', (m: { stopped?: boolean; elu?: number }) => m.stopped && resolve(m.elu!));
          w.postMessage({ stop: true });
        }),
    ),
  );
  await Promise.all(workers.map((w) => w.terminate()));
  const drops = udpDrops(); // before the relay socket closes (its row goes with it)
  await c.close();
  // The busiest thread's share of one core: a client thread at ≥ 0.8 would be the limit, not the server.
  const busiestThread = Math.max(...[...threads1].map(([t, s]) => s - (threads0.get(t) ?? 0))) / (totalMs / 1000);
  const ok = results.filter((r) => r.ok);
  const dups = duplicateAddresses(results.map((r) => ({ mac: r.mac, ok: r.ok, ms: 0, resends: 0, naks: 0, ...(r.address ? { address: r.address } : {}) })).concat([ready.probe]));
  const errs = new Map<string, number>();
  for (const r of results) if (!r.ok) errs.set(r.error!, (errs.get(r.error!) ?? 0) + 1);
  const q = (k: 'dhcpMs' | 'tftpMs' | 'httpMs' | 'totalMs') => ({ p50: pct(ok.map((r) => r[k]), 50), p99: pct(ok.map((r) => r[k]), 99), max: Math.max(...ok.map((r) => r[k])) });
  const sum = (k: 'dhcpResends' | 'busy' | 'scriptRetries') => results.reduce((a, r) => a + r[k], 0);
  return {
    n: spec.n,
    ok: ok.length,
    failed: results.length - ok.length,
    duplicates: dups.length,
    distinctAddresses: new Set(ok.map((r) => r.address)).size,
    totalMs,
    dhcp: q('dhcpMs'),
    tftp: q('tftpMs'),
    http: q('httpMs'),
    total: q('totalMs'),
    dhcpResends: sum('dhcpResends'),
    reboots: results.reduce((a, r) => a + r.boots - 1, 0),
    /** Machines by the most boots in a row they lost to DHCP (index 1, 2, 3 …; 0 unused). */
    dhcpLostInRow: results.reduce((h, r) => ((h[r.dhcpLostInRow] = (h[r.dhcpLostInRow] ?? 0) + 1), h), [] as number[]).map((x) => x ?? 0),
    /** The client namespace's UDP receive drops by port (the storm client's own relay socket included). */
    udpDrops: drops,
    busy503: sum('busy'),
    scriptRetries: sum('scriptRetries'),
    bytes: ok.length * (spec.tftpSize + spec.kernel.size + spec.initrd.size),
    errors: [...errs].map(([e, n]) => `${n}x ${e}`).slice(0, 5),
    cpuSec: (cpu.user + cpu.system) / 1e6,
    wallSec: totalMs / 1000,
    busiestThreadCores: busiestThread,
    elu: { main: mainElu, workers: workerElu },
  };
}

const [mode, json] = process.argv.slice(2);
const modes: Record<string, (s: never) => Promise<unknown>> = { tftp, http, storm } as never;
const fn = modes[mode ?? ''];
if (!fn || !json) {
  console.error('usage: client.js tftp|http|storm JSON');
  process.exit(2);
}
// The bench kills us by PID if we overrun; exit with the parent too.
fn(JSON.parse(json) as never).then(
  (r) => {
    process.stdout.write(`RESULT ${JSON.stringify(r)}\n`, () => process.exit(0));
  },
  (e: Error) => {
    process.stderr.write(`client ${mode} failed: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
