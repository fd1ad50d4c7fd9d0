/**
 * What an ACK waits for, alone: the lease journal's append (write + fdatasync, shared/fs/journal.ts) while
 * the disk is busy with writeback, with and without the journal's preallocated zero tail. No network, no
 * DHCP: a loop of single appends (one per `--interval-ms`, as the images bench's DHCP probe binds one lease
 * at a time) while a second process writes a large file and syncs it (what an image upload or a page
 * cache flush does to the disk), alternating the two journal setups `--pairs` times.
 *
 *   npm run build
 *   node dist/scripts/bench/images/lease-fsync.js [--appends 500] [--interval-ms 10] [--pairs 3] [--writer-mib 512] [--writer-sync-mib 0] [--dir DIR]
 *
 * Prints per run the append latency p50 / p99 / max (ms) and the CPU time of this process per append.
 * The directory must be on the disk under test (default: a temp dir under os.tmpdir()).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Journal } from '../../../shared/fs/journal.js';

const { values: args } = parseArgs({
  options: {
    appends: { type: 'string', default: '500' },
    'interval-ms': { type: 'string', default: '10' },
    pairs: { type: 'string', default: '3' },
    'writer-mib': { type: 'string', default: '512' },
    /** The writer fsyncs every N MiB (0: never, the kernel's writeback alone). */
    'writer-sync-mib': { type: 'string', default: '0' },
    dir: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log('usage: node dist/scripts/bench/images/lease-fsync.js [--appends 500] [--interval-ms 10] [--pairs 3] [--writer-mib 512] [--writer-sync-mib 0] [--dir DIR]');
  process.exit(0);
}
const N = Number(args.appends);
const INTERVAL = Number(args['interval-ms']);
const WRITER_MIB = Number(args['writer-mib']);
const WRITER_SYNC = Number(args['writer-sync-mib']);
const base = mkdtempSync(join(args.dir ?? tmpdir(), 'underlay-lease-fsync-'));
const record = { address: '198.18.2.17', mac: '02:00:00:00:12:34', subnet: '198.18.0.0/15', state: 'bound', hostname: 'pxe-client', updatedAt: 1_764_000_000_000, expiresAt: 1_764_003_600_000 };

/** A process that writes `WRITER_MIB` MiB files (fdatasync every `WRITER_SYNC` MiB, or never), in a loop until killed. */
function busyDisk(file: string) {
  const js = `const fs=require('fs');const b=Buffer.alloc(1<<20,7);for(;;){const fd=fs.openSync(${JSON.stringify(file)},'w');for(let i=0;i<${WRITER_MIB};i++){fs.writeSync(fd,b);if(${WRITER_SYNC}>0&&i%${WRITER_SYNC || 1}===${(WRITER_SYNC || 1) - 1})fs.fdatasyncSync(fd);}fs.closeSync(fd);}`;
  return spawn(process.execPath, ['-e', js], { stdio: 'ignore' });
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function run(label: string, preallocate: number | undefined): Promise<void> {
  const dir = mkdtempSync(join(base, `${label}-`));
  const { journal } = await Journal.open(join(dir, 'leases.jsonl'), preallocate ? { preallocate } : {});
  const writer = busyDisk(join(dir, 'busy.bin'));
  await new Promise((r) => setTimeout(r, 1000)); // the writer's dirty pages build up
  const ms: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await journal.append({ ...record, n: i });
    ms.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, INTERVAL));
  }
  const cpu = process.cpuUsage(cpu0);
  writer.kill('SIGKILL');
  await journal.close();
  ms.sort((a, b) => a - b);
  const st = journal.stats();
  console.log(`| ${label} | ${N} | ${pct(ms, 50).toFixed(2)} | ${pct(ms, 99).toFixed(2)} | ${ms[ms.length - 1]!.toFixed(2)} | ${(((cpu.user + cpu.system) / 1000 / N) * 1000).toFixed(0)} µs | ${st.extensions} |`);
  rmSync(dir, { recursive: true, force: true });
}

console.log(`# lease journal append latency while another process writes ${WRITER_MIB} MiB files (${WRITER_SYNC ? `fdatasync every ${WRITER_SYNC} MiB` : 'no fsync: kernel writeback'}); ${N} appends, one every ${INTERVAL} ms; dir ${base}`);
console.log('| journal | appends | p50 ms | p99 ms | max ms | CPU per append | zero-tail extensions |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
try {
  for (let i = 0; i < Number(args.pairs); i++) {
    await run('plain', undefined);
    await run('preallocated 1 MiB', 1024 * 1024);
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
