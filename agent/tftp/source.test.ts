import { mkdtempSync, rmSync, statSync, writeFileSync, utimesSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileCache } from './cache.js';
import { FileSource, toNetascii } from './source.js';

const dir = mkdtempSync(join(tmpdir(), 'ul-tftp-src-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('FileSource', () => {
  it('streams a file in chunks, across chunk boundaries, holding only a few chunks', async () => {
    const data = Buffer.alloc(100_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const p = join(dir, 'f.bin');
    writeFileSync(p, data);
    const src = new FileSource(await open(p, 'r'), data.length, 4096);
    const out: Buffer[] = [];
    const blk = 1468; // does not divide 4096: blocks straddle chunks
    for (let pos = 0; pos < data.length; pos += blk) {
      let view = src.peek(pos, blk);
      if (!view) {
        await src.load(pos, blk);
        view = src.peek(pos, blk);
      }
      expect(view).toBeDefined();
      out.push(Buffer.from(view!));
      expect((src as unknown as { chunks: Map<number, Buffer> }).chunks.size).toBeLessThanOrEqual(3);
    }
    expect(Buffer.concat(out).equals(data)).toBe(true);
    await src.close();
  });

  it('rejects load when the file shrank', async () => {
    const p = join(dir, 'short.bin');
    writeFileSync(p, Buffer.alloc(10));
    const src = new FileSource(await open(p, 'r'), 10_000, 4096);
    await expect(src.load(0, 512)).rejects.toThrow(/shrank/);
    await src.close();
  });
});

describe('toNetascii', () => {
  it('maps LF to CR LF and CR to CR NUL', () => {
    expect(toNetascii(Buffer.from('a\nb\rc'))).toEqual(Buffer.from('a\r\nb\r\0c', 'latin1'));
  });
});

describe('FileCache', () => {
  it('hits on the same file, misses when it changed, evicts least recently used', () => {
    const p = join(dir, 'c.bin');
    writeFileSync(p, 'one');
    const c = new FileCache({ maxFileBytes: 10, maxTotalBytes: 8 });
    const st = statSync(p);
    c.set(p, st, Buffer.from('one'));
    expect(c.get(p, st)?.toString()).toBe('one');
    writeFileSync(p, 'three');
    utimesSync(p, new Date(), new Date(Date.now() + 5000));
    expect(c.get(p, statSync(p))).toBeUndefined();
    const q = join(dir, 'd.bin');
    writeFileSync(q, 'four');
    c.set(p, statSync(p), Buffer.from('three'));
    c.set(q, statSync(q), Buffer.from('four')); // 5 + 4 > 8: p is evicted
    expect(c.get(p, statSync(p))).toBeUndefined();
    expect(c.get(q, statSync(q))?.toString()).toBe('four');
    expect(c.bytes).toBe(4);
    expect(c.accepts(11)).toBe(false);
  });
});
