// Helpers for the Debian image tests: build (shared, cached), read the disk without mounting.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const BUILD = join(REPO, 'scripts/images/build-debian.sh');
/** One fixed place, so CI builds the image once per run and later suites (deploy) reuse it. */
export const IMAGE_CACHE = process.env.UNDERLAY_TEST_IMAGE_CACHE ?? '/var/tmp/underlay-test-images/debian';

export interface Partition {
  number: number;
  name: string;
  startSector: number;
  sectors: number;
  partUuid: string;
  filesystem: string;
  fsUuid: string;
}
export interface Manifest {
  name: string;
  hash: string;
  release: string;
  kernelRelease: string;
  raw: { file: string; size: number; sha256: string };
  compressed: { file: string; format: string; size: number; sha256: string };
  diskGuid: string;
  partitions: Partition[];
  cmdline: string;
  ssh: boolean;
  inputs: Record<string, unknown>;
  packages: Record<string, string>;
}
export interface Built {
  dir: string;
  stdout: string;
  stderr: string;
  seconds: number;
  manifest: Manifest;
}

/**
 * The size every test builds (one shared build): the root holds ~0.8 GiB, and a smaller image than the
 * default 2G keeps each deploy's write and read-back short under TCG (the deploy grows the root anyway).
 */
export const TEST_IMAGE_MIB = 1280;

export function buildImage(args: string[]): Built {
  const t0 = Date.now();
  const sized = args.includes('--size') ? args : ['--size', `${TEST_IMAGE_MIB}M`, ...args];
  const r = spawnSync('bash', [BUILD, ...sized], { cwd: REPO, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`build-debian.sh failed (${r.status}):\n${r.stderr.slice(-8000)}\n${r.stdout}`);
  const lines = r.stdout.trim().split('\n');
  const dir = lines[lines.length - 1];
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  return { dir, stdout: r.stdout, stderr: r.stderr, seconds: (Date.now() - t0) / 1000, manifest };
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The first n bytes of a file (disk images are larger than readFileSync allows). */
export function readHead(file: string, n: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/** sha256 of `zstd -dc file`, streamed. */
export async function sha256OfZstd(file: string): Promise<string> {
  const h = createHash('sha256');
  const p = spawn('zstd', ['-q', '-dc', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  for await (const chunk of p.stdout) h.update(chunk as Buffer);
  await new Promise((res) => p.on('close', res));
  return h.digest('hex');
}

/** `debugfs -R CMD` against the ext4 partition of a disk image, read-only. */
export function debugfs(image: string, offsetBytes: number, cmd: string): string {
  return execFileSync('debugfs', ['-R', cmd, `${image}?offset=${offsetBytes}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
}

/** Whether a path exists in the ext4 partition (debugfs prints an inode for it). */
export function debugfsExists(image: string, offsetBytes: number, path: string): boolean {
  return /Inode: \d+/.test(debugfs(image, offsetBytes, `stat ${path}`));
}

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS.fd';
export const GPTMBR = '/usr/lib/syslinux/mbr/gptmbr.bin';
export const haveFile = existsSync;
