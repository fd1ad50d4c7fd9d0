/**
 * TFTP throughput: Underlay's agent TFTP server vs tftpd-hpa, side by side, same client (atftp).
 *
 *   npm run build && node dist/scripts/bench/tftp/run.js [--size-mib 64] [--rounds 5] [--data-path auto|js] [--spin-us N]
 *
 * Starts both servers on 127.0.0.1 high ports (tftpd-hpa as `in.tftpd -L -s ROOT -a 127.0.0.1:PORT`
 * in the foreground, killed by PID at the end), fetches one random file with atftp at blksize 1468,
 * lock-step and with windowsize 8/16 (each server is asked; one that does not grant windowsize runs
 * lock-step, which is what a client gets from it), several rounds interleaved, and prints the median
 * MB/s (10^6 bytes/s) per server and the ratio underlay/tftpd-hpa. Every download is size-checked,
 * the first of each series also sha256-checked. Temporary files live under /dev/shm when present.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tftpGet } from '../tftp-client.js';
import { TftpServer } from '../../../agent/tftp/server.js';

interface Args {
  sizeMiB: number;
  rounds: number;
  /** Our server's data path: 'auto' (native when the addon loads) or 'js'. */
  dataPath: 'auto' | 'js';
  /** Native data path: busy-poll microseconds (undefined: the server's default). */
  spinUs: number | undefined;
  /** Our server's cacheMaxFileBytes in MiB (undefined: its default, 8); cached files use the JS data path. */
  cacheMaxMiB: number | undefined;
}

const USAGE = 'usage: run.js [--size-mib 1..1024] [--rounds 1..50] [--data-path auto|js] [--spin-us 0..10000] [--cache-max-mib 0..1024]';

function parseArgs(argv: string[]): Args {
  const a: Args = { sizeMiB: 64, rounds: 5, dataPath: 'auto', spinUs: undefined, cacheMaxMiB: undefined };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const raw = argv[i + 1];
    const v = Number(raw);
    if (k === '--size-mib' && Number.isInteger(v) && v > 0 && v <= 1024) (a.sizeMiB = v), i++;
    else if (k === '--rounds' && Number.isInteger(v) && v > 0 && v <= 50) (a.rounds = v), i++;
    else if (k === '--data-path' && (raw === 'auto' || raw === 'js')) (a.dataPath = raw), i++;
    else if (k === '--spin-us' && Number.isInteger(v) && v >= 0 && v <= 10_000) (a.spinUs = v), i++;
    else if (k === '--cache-max-mib' && Number.isInteger(v) && v >= 0 && v <= 1024) (a.cacheMaxMiB = v), i++;
    else throw new Error(`${USAGE} (bad argument ${k})`);
  }
  return a;
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function runClient(args: string[], cwd: string): Promise<{ ok: boolean; ms: number; stderr: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    execFile('atftp', args, { cwd, timeout: 180_000 }, (err, _out, stderr) => {
      resolve({ ok: !err, ms: performance.now() - t0, stderr: String(stderr) });
    });
  });
}

/** Which of the requested options the server grants (from its OACK; aborts right after it). */
async function granted(port: number, file: string, options: Record<string, number>): Promise<Record<string, string>> {
  for (let i = 0; i < 20; i++) {
    try {
      const r = await tftpGet({ host: '127.0.0.1', port, file, options: { ...options, tsize: 0 }, abortAfterOack: { code: 8, message: 'probe' }, timeoutMs: 250, retries: 2 });
      return r.oack ?? {};
    } catch {
      await new Promise((r) => setTimeout(r, 100)); // server still starting
    }
  }
  throw new Error(`no TFTP server answering on 127.0.0.1:${port}`);
}

/** CPU time (user + system, all threads) a process has used so far, from /proc/PID/stat. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}
/** USER_HZ: 100 on Linux for every architecture Node ships for. */
const CLOCK_TICKS_PER_SECOND = 100;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  for (const cmd of ['/usr/sbin/in.tftpd', '/usr/bin/atftp']) {
    if (!existsSync(cmd)) throw new Error(`${cmd} missing: apt-get install -y tftpd-hpa atftp`);
  }
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'ul-tftp-bench-'));
  const root = join(dir, 'root');
  const out = join(dir, 'out');
  let hpa: ChildProcess | undefined;
  let ours: ChildProcess | undefined;
  const cleanup = () => {
    for (const child of [hpa, ours]) {
      if (child?.pid && child.exitCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    await import('node:fs/promises').then((fs) => Promise.all([fs.mkdir(root), fs.mkdir(out)]));
    // tftpd-hpa drops privileges (to nobody) and chroots into ROOT: world-readable files.
    chmodSync(dir, 0o755);
    chmodSync(root, 0o755);
    const size = args.sizeMiB * 1024 * 1024;
    const file = 'bench.bin';
    writeFileSync(join(root, file), randomBytes(size));
    chmodSync(join(root, file), 0o644);
    const want = createHash('sha256').update(readFileSync(join(root, file))).digest('hex');

    const hpaPort = await freeUdpPort();
    hpa = spawn('/usr/sbin/in.tftpd', ['-L', '-s', root, '-a', `127.0.0.1:${hpaPort}`], { stdio: 'ignore' });
    // Our server in its own process too, as in production and like in.tftpd.
    const serveArgs = [root, args.dataPath, String(args.spinUs ?? ''), String(args.cacheMaxMiB ?? '')];
    ours = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', ...serveArgs], { stdio: ['pipe', 'pipe', 'inherit'] });
    const { port: oursPort, dataPath } = await new Promise<{ port: number; dataPath: string }>((resolve, reject) => {
      let buf = '';
      ours!.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /^port (\d+) data-path (\S+)$/m.exec(buf);
        if (m) resolve({ port: Number(m[1]), dataPath: m[2]! });
      });
      ours!.once('exit', (code) => reject(new Error(`underlay server exited (${code})`)));
    });
    const servers = [
      { name: 'underlay', port: oursPort },
      { name: 'tftpd-hpa', port: hpaPort },
    ];

    const configs = [
      { name: 'blksize 1468', options: { blksize: 1468 } as Record<string, number> },
      { name: 'blksize 1468 windowsize 8', options: { blksize: 1468, windowsize: 8 } },
      { name: 'blksize 1468 windowsize 16', options: { blksize: 1468, windowsize: 16 } },
    ];
    const version = await new Promise<string>((r) => execFile('atftp', ['--version'], (_e, o, e) => r(String(o || e).split('\n')[0] ?? '')));
    console.log(`TFTP bench: ${args.sizeMiB} MiB file, ${args.rounds} rounds, client ${version.trim()}, loopback, files in ${base}`);
    const cached = size <= (args.cacheMaxMiB ?? 8) * 1024 * 1024;
    console.log(
      `underlay data path: ${cached ? 'js (file within the small-file cache)' : dataPath}${!cached && dataPath === 'native' ? `, lock-step busy-poll ${args.spinUs ?? 'default (50)'} us` : ''}`,
    );
    const results: { config: string; server: string; grantedWindow: string; mbps: number[]; busyMs: number; cpuMs: number }[] = [];
    for (const c of configs) {
      const rows = await Promise.all(
        servers.map(async (s) => {
          const g = await granted(s.port, file, c.options);
          return { config: c.name, server: s.name, port: s.port, grantedWindow: g.windowsize ?? '-', grantedBlk: g.blksize ?? '512', mbps: [] as number[], busyMs: 0, cpuMs: 0 };
        }),
      );
      for (let round = 0; round < args.rounds; round++) {
        // Alternate which server goes first so neither always runs on a warm or a cold machine.
        const order = round % 2 ? [...rows].reverse() : rows;
        for (const row of order) {
          const local = join(out, `${row.server}.bin`);
          rmSync(local, { force: true });
          const opts = Object.entries(c.options).flatMap(([k, v]) => ['--option', `${k} ${v}`]);
          const cpu0 = row.server === 'underlay' ? processCpuMs(ours.pid!) : 0;
          const r = await runClient([...opts, '-g', '-r', file, '-l', local, '127.0.0.1', String(row.port)], out);
          if (row.server === 'underlay') (row.cpuMs += processCpuMs(ours.pid!) - cpu0), (row.busyMs += r.ms);
          if (!r.ok) throw new Error(`${row.server} ${c.name}: atftp failed: ${r.stderr.trim()}`);
          if (statSync(local).size !== size) throw new Error(`${row.server} ${c.name}: wrong size ${statSync(local).size}`);
          if (round === 0 && createHash('sha256').update(readFileSync(local)).digest('hex') !== want) throw new Error(`${row.server} ${c.name}: sha256 mismatch`);
          row.mbps.push(size / 1e6 / (r.ms / 1000));
        }
      }
      results.push(...rows);
    }

    console.log('');
    console.log('| options | server | windowsize granted | MB/s median | MB/s min..max | runs | server CPU |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of results) {
      // Our server's CPU time (user+sys, all threads) over the wall time of its downloads; not measured for in.tftpd (forks per transfer).
      const cpu = r.server === 'underlay' ? `${Math.round((100 * r.cpuMs) / r.busyMs)}%` : '-';
      console.log(`| ${r.config} | ${r.server} | ${r.grantedWindow} | ${median(r.mbps).toFixed(1)} | ${Math.min(...r.mbps).toFixed(1)}..${Math.max(...r.mbps).toFixed(1)} | ${r.mbps.length} | ${cpu} |`);
    }
    console.log('');
    for (const c of configs) {
      const u = results.find((r) => r.config === c.name && r.server === 'underlay')!;
      const h = results.find((r) => r.config === c.name && r.server === 'tftpd-hpa')!;
      console.log(`ratio underlay/tftpd-hpa, ${c.name}: ${(median(u.mbps) / median(h.mbps)).toFixed(2)}x`);
    }
    const stats = await new Promise<string>((resolve) => {
      let buf = '';
      ours!.stdout!.on('data', (d: Buffer) => (buf += d.toString()));
      ours!.once('exit', () => resolve(/^stats (.*)$/m.exec(buf)?.[1] ?? '{}'));
      ours!.kill('SIGTERM');
    });
    const st = JSON.parse(stats) as Record<string, number>;
    console.log(`underlay stats: completed ${st.completed}, size probes ${st.sizeProbes}, errors ${st.errors}, retransmits ${st.retransmits}`);
  } finally {
    cleanup();
  }
}

/** Child mode: serve ROOT on a free loopback port, print it, print stats on SIGTERM. */
async function serve(root: string, dataPath: string | undefined, spinUs: string | undefined, cacheMaxMiB: string | undefined): Promise<void> {
  const server = new TftpServer({
    root,
    address: '127.0.0.1',
    port: 0,
    maxBlksize: 1468,
    maxWindowsize: 64,
    dataPath: dataPath === 'js' ? 'js' : 'auto',
    ...(spinUs ? { nativeSpinUs: Number(spinUs) } : {}),
    ...(cacheMaxMiB ? { cacheMaxFileBytes: Number(cacheMaxMiB) * 1024 * 1024 } : {}),
  });
  const { port } = await server.start();
  process.stdout.write(`port ${port} data-path ${server.dataPath}\n`);
  process.once('SIGTERM', () => {
    process.stdout.write(`stats ${JSON.stringify(server.stats())}\n`, () => {
      void server.stop().then(() => process.exit(0));
    });
  });
  // Exit with the parent (no orphan if the bench is killed).
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

const isServe = process.argv[2] === '--serve';
(isServe ? serve(process.argv[3]!, process.argv[4], process.argv[5], process.argv[6]) : main()).then(
  () => {
    if (!isServe) process.exit(0);
  },
  (err: Error) => {
    console.error(`bench failed: ${err.message}`);
    process.exit(1);
  },
);
