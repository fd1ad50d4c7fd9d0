import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ImageFormat } from '../api/images.js';

/** What a file's first bytes say it is. `qcow2` is accepted by `images push` only to be converted. */
export type DetectedFormat = ImageFormat | 'qcow2';

const MAGIC: [DetectedFormat, number[]][] = [
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['gzip', [0x1f, 0x8b]],
  ['qcow2', [0x51, 0x46, 0x49, 0xfb]],
];

export async function detectFormat(file: string): Promise<DetectedFormat> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await fh.read(head, 0, 8, 0);
    for (const [format, magic] of MAGIC) if (bytesRead >= magic.length && magic.every((b, i) => head[i] === b)) return format;
    return 'raw';
  } finally {
    await fh.close();
  }
}

/** A file `images push` cannot digest (bad compressed stream, missing tool). */
export class ImageDigestError extends Error {
  override readonly name = 'ImageDigestError';
}

export interface ImageDigest {
  /** Of the file itself: the artifact the agents serve. */
  sha256: string;
  size: number;
  /** Of the disk it decompresses to: what a deploy writes and verifies. */
  rawSha256: string;
  rawSize: number;
}

const DECOMPRESSOR: Record<Exclude<ImageFormat, 'raw'>, { cmd: string; pkg: string }> = {
  zstd: { cmd: 'zstd', pkg: 'zstd' },
  xz: { cmd: 'xz', pkg: 'xz-utils' },
  gzip: { cmd: 'gzip', pkg: 'gzip' },
};

/**
 * Hashes an image file and the raw disk it decompresses to in one streaming pass (the file is read
 * once; the decompressor's output is hashed and counted, never stored), so a GiB image needs no memory
 * and no scratch space. `tick` sees every byte read from the file (progress).
 */
export async function digestImage(file: string, format: ImageFormat, tick: (n: number) => void = () => undefined): Promise<ImageDigest> {
  const outer = createHash('sha256');
  let size = 0;
  const src = createReadStream(file, { highWaterMark: 1 << 20 });
  const tap = async function* (chunks: AsyncIterable<Buffer>) {
    for await (const c of chunks) {
      outer.update(c);
      size += c.length;
      tick(c.length);
      yield c;
    }
  };
  if (format === 'raw') {
    await pipeline(src, tap, new Writable({ write: (_c, _e, cb) => cb() }));
    const sha256 = outer.digest('hex');
    return { sha256, size, rawSha256: sha256, rawSize: size };
  }
  const { cmd, pkg } = DECOMPRESSOR[format];
  const child = spawn(cmd, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new ImageDigestError(`${cmd} not found: install it (apt-get install -y ${pkg})`) : e));
    child.on('close', (code) => resolve(code ?? 1));
  });
  const inner = createHash('sha256');
  let rawSize = 0;
  const feeding = pipeline(src, tap, child.stdin).catch((e: NodeJS.ErrnoException) => {
    // The decompressor quits early on a corrupt stream (EPIPE): its exit status tells why.
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_PREMATURE_CLOSE') throw e;
  });
  const draining = pipeline(
    child.stdout,
    new Writable({
      write(c: Buffer, _e, cb) {
        inner.update(c);
        rawSize += c.length;
        cb();
      },
    }),
  );
  const [code] = await Promise.all([exited, feeding, draining]);
  if (code !== 0) throw new ImageDigestError(`${file} is not a valid ${format} stream (${cmd} -dc: ${stderr.trim().split('\n').pop() || `exit ${code}`})`);
  return { sha256: outer.digest('hex'), size, rawSha256: inner.digest('hex'), rawSize };
}
