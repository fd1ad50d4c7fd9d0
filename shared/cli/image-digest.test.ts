import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectFormat, digestImage, ImageDigestError } from './image-digest.js';

const dir = mkdtempSync(join(tmpdir(), 'image-digest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// A raw "disk": half random, half zeros (compresses, like a real one).
const raw = Buffer.concat([randomBytes(512 * 1024), Buffer.alloc(1536 * 1024)]);
const rawFile = join(dir, 'disk.raw');
writeFileSync(rawFile, raw);
const compressed = (tool: string, args: string[], ext: string) => {
  const out = join(dir, `disk.raw.${ext}`);
  writeFileSync(out, execFileSync(tool, [...args, '-c', rawFile], { maxBuffer: 64 << 20 }));
  return out;
};

describe('detectFormat', () => {
  it('tells raw, zstd, xz, gzip and qcow2 apart by their first bytes', async () => {
    expect(await detectFormat(rawFile)).toBe('raw');
    expect(await detectFormat(compressed('zstd', ['-q'], 'zst'))).toBe('zstd');
    expect(await detectFormat(compressed('xz', ['-T1'], 'xz'))).toBe('xz');
    expect(await detectFormat(compressed('gzip', ['-n'], 'gz'))).toBe('gzip');
    const q = join(dir, 'disk.qcow2');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', rawFile, q]);
    expect(await detectFormat(q)).toBe('qcow2');
  });
});

describe('digestImage', () => {
  it('hashes the raw file as both artifact and disk', async () => {
    expect(await digestImage(rawFile, 'raw')).toEqual({ sha256: sha(raw), size: raw.length, rawSha256: sha(raw), rawSize: raw.length });
  });

  for (const [format, tool, args, ext] of [
    ['zstd', 'zstd', ['-q'], 'zst'],
    ['xz', 'xz', ['-T1'], 'xz'],
    ['gzip', 'gzip', ['-n'], 'gz'],
  ] as const) {
    it(`${format}: the file's own hash and size, and those of the disk it decompresses to`, async () => {
      const file = compressed(tool, [...args], ext);
      const bytes = readFileSync(file);
      let ticked = 0;
      const d = await digestImage(file, format, (n) => (ticked += n));
      expect(d).toEqual({ sha256: sha(bytes), size: bytes.length, rawSha256: sha(raw), rawSize: raw.length });
      expect(ticked).toBe(bytes.length);
    });
  }

  it('refuses a corrupt or truncated compressed stream with the tool\'s reason', async () => {
    const good = readFileSync(compressed('zstd', ['-q'], 'zst'));
    const truncated = join(dir, 'trunc.zst');
    writeFileSync(truncated, good.subarray(0, Math.floor(good.length / 2)));
    await expect(digestImage(truncated, 'zstd')).rejects.toThrow(ImageDigestError);
    await expect(digestImage(rawFile, 'xz')).rejects.toThrow(/not a valid xz stream/);
  });
});
