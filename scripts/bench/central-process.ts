/** A real central for the benchmarks: `underlay central serve` from the built CLI on a free loopback port. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';
import type { Conn } from './https-call.js';

const CLI = fileURLToPath(new URL('../../shared/cli/underlay.js', import.meta.url));

export interface BenchCentral {
  conn: Conn;
  pid: number;
  /** The central's task-signing public key (base64), as an agent pins it at join. */
  publicKey: string;
  /** User + system CPU time of the central so far (ms, from /proc). */
  cpuMs(): number;
  rssMiB(): number;
  /** SIGTERM (so --cpu-prof writes its profile), then waits for the exit. */
  stop(): Promise<void>;
}

/** Resolves with the spawned central's stdout once it printed "central listening on URL"; rejects if it exits first. */
export function untilListening(child: ChildProcess): Promise<string> {
  let out = '';
  return new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (/central listening on/.test(out)) resolve(out);
    });
    child.once('exit', (c) => reject(new Error(`central exited with ${c}:\n${out}`)));
  });
}

/** Starts a central with its data in `dataDir`; `profileDir` writes a V8 CPU profile of it there. */
export async function spawnCentral(dataDir: string, opts: { profileDir?: string; args?: string[] } = {}): Promise<BenchCentral> {
  if (opts.profileDir) mkdirSync(opts.profileDir, { recursive: true });
  const nodeArgs = opts.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'central', 'serve', '--data', dataDir, '--listen', `127.0.0.1:${await freePort()}`, ...(opts.args ?? [])], {
    env: { ...process.env, UNDERLAY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // However the bench ends (an error, Ctrl-C, process.exit while the central still starts), the central goes with it.
  const orphan = () => child.kill('SIGTERM');
  process.once('exit', orphan);
  void exited.then(() => process.off('exit', orphan));
  const out = await untilListening(child);
  const pid = child.pid!;
  return {
    conn: { url: /central listening on (\S+)/.exec(out)![1], ca: readFileSync(join(dataDir, 'ca.pem'), 'utf8'), token: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim() },
    pid,
    publicKey: (JSON.parse(readFileSync(join(dataDir, 'signing.key'), 'utf8')) as { publicKey: string }).publicKey,
    cpuMs: () => cpuMsOf(pid),
    rssMiB: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** User + system CPU time of a process, from /proc (clock ticks of 10 ms). */
export function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * CPU time (ms) of a process and its children: its own, its exited children's (as the kernel sums them
 * once they were waited for), and each living child's (PostgreSQL: the postmaster and its backends).
 */
export function treeCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  let ms = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 10;
  for (const child of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const f = readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1].split(' ');
      if (Number(f[1]) === pid) ms += (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      /* exited meanwhile */
    }
  }
  return ms;
}

/** The p-th percentile (nearest rank) of xs. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
