import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, JournalCorruptError } from './journal.js';
import { StorageFullError, StorageUnavailableError } from './storage-errors.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'journal-test-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

type Rec = { n: number; text?: string };
const nums = (rs: Rec[]) => rs.map((r) => r.n);

/** Replaces the journal's file handle write/datasync (private) to inject failures. */
function inject(j: Journal<Rec>, fn: 'write' | 'datasync', impl: (orig: (...a: unknown[]) => Promise<unknown>, ...a: unknown[]) => Promise<unknown>): () => void {
  const fh = (j as unknown as { fh: Record<string, (...a: unknown[]) => Promise<unknown>> }).fh;
  const orig = fh[fn].bind(fh);
  fh[fn] = (...a: unknown[]) => impl(orig, ...a);
  return () => {
    fh[fn] = orig;
  };
}
const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

describe('Journal', () => {
  it('makes every acknowledged append readable, in order, with group commit', async () => {
    const path = join(dir, 'j.jsonl');
    const commits: number[] = [];
    const { journal: j } = await Journal.open<Rec>(path, { onCommit: (_s, n) => commits.push(n) });
    const N = 200;
    await Promise.all(Array.from({ length: N }, (_, n) => j.append({ n, text: 'é✓' })));
    await j.close();
    const { records, tornBytes } = await Journal.read<Rec>(path);
    expect(nums(records)).toEqual(Array.from({ length: N }, (_, n) => n));
    expect(records[5].text).toBe('é✓');
    expect(tornBytes).toBe(0);
    // Concurrent appends share fsyncs: fewer commits than records, and every record counted once.
    expect(commits.reduce((a, b) => a + b, 0)).toBe(N);
    expect(commits.length).toBeLessThan(N);
    expect(j.bytes).toBe(statSync(path).size);
  });

  it('linger: a batch that would start small waits for more appends (up to `records`, or `ms`), each acked after its fsync', async () => {
    const tick = () => new Promise((r) => setImmediate(r));
    let runs = 0;
    const run = async (linger?: { records: number; ms: number }, oneTurn = false) => {
      const commits: number[] = [];
      const path = join(dir, `linger-${runs++}.jsonl`);
      const { journal: j } = await Journal.open<Rec>(path, { onCommit: (_s, n) => commits.push(n), ...(linger ? { linger } : {}) });
      const acked: number[] = [];
      const done: Promise<void>[] = [];
      for (let n = 0; n < 4; n++) {
        // Each append in its own turn of the loop: without a linger the first one is written alone.
        done.push(j.append({ n }).then(() => void acked.push(commits.reduce((a, b) => a + b, 0))));
        if (!oneTurn) await tick();
      }
      await Promise.all(done);
      await j.close();
      expect(nums((await Journal.read<Rec>(path)).records)).toEqual([0, 1, 2, 3]);
      // An append resolves only once a commit holding it has been counted (fdatasync'd).
      acked.forEach((durable, i) => expect(durable).toBeGreaterThanOrEqual(i + 1));
      return commits;
    };
    expect((await run())[0]).toBe(1);
    expect(await run({ records: 4, ms: 60_000 })).toEqual([4]); // the 4th append ends the linger
    expect(await run({ records: 2, ms: 60_000 })).toEqual([2, 2]);
    // A turn of the loop without a new append ends the linger: no waiting for `records` that never come.
    expect(await run({ records: 100, ms: 60_000 }, true)).toEqual([4]);
  });

  it('rejects appends after close', async () => {
    const { journal: j } = await Journal.open<Rec>(join(dir, 'j.jsonl'));
    await j.close();
    await expect(j.append({ n: 1 })).rejects.toThrow(/closed/);
  });

  it('drops a torn tail (unterminated line, or a partly written multi-byte character) and cuts it on open', async () => {
    const path = join(dir, 'j.jsonl');
    const good = '{"n":0}\n{"n":1}\n';
    writeFileSync(path, good + '{"n":2,"te');
    let r = await Journal.read<Rec>(path);
    expect(r.records).toEqual([{ n: 0 }, { n: 1 }]);
    expect(r.tornBytes).toBe(Buffer.byteLength('{"n":2,"te'));
    expect(r.validBytes).toBe(Buffer.byteLength(good));

    const tail = Buffer.concat([Buffer.from('{"n":2,"text":"'), Buffer.from('✓').subarray(0, 2)]);
    writeFileSync(path, Buffer.concat([Buffer.from(good), tail]));
    r = await Journal.read<Rec>(path);
    expect(r.records).toHaveLength(2);
    expect(r.tornBytes).toBe(tail.length);

    const { journal, tornBytes } = await Journal.open<Rec>(path);
    expect(tornBytes).toBe(tail.length);
    await journal.append({ n: 3 });
    await journal.close();
    expect(readFileSync(path, 'utf8')).toBe(good + '{"n":3}\n');
    expect(await Journal.read(join(dir, 'missing.jsonl'))).toEqual({ records: [], tornBytes: 0, tailBytes: 0, validBytes: 0, corrupt: [] });
  });

  it('refuses to open over a corrupt complete line in the middle, naming file, line and offset', async () => {
    const path = join(dir, 'j.jsonl');
    const text = '{"n":0}\n{"n":1}\n\0\0\0\0\n{"n":3}\n';
    writeFileSync(path, text);
    const err = await Journal.open<Rec>(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JournalCorruptError);
    expect(err).toMatchObject({ file: path, line: 3, offset: 16 });
    expect((err as Error).message).toContain(`${path} line 3 (byte offset 16)`);
    expect(readFileSync(path, 'utf8')).toBe(text); // nothing was changed
    // A record that parses but fails validation is corruption too.
    writeFileSync(path, '{"n":0}\n{"n":"x"}\n{"n":2}\n');
    const parse = (v: unknown) => {
      if (typeof (v as Rec).n !== 'number') throw new Error('n must be a number');
      return v as Rec;
    };
    await expect(Journal.open<Rec>(path, { parse })).rejects.toThrow(/line 2 .*n must be a number/);
  });

  it('salvage mode keeps every valid record (also after the bad line) and sets a copy aside', async () => {
    const path = join(dir, 'j.jsonl');
    const text = '{"n":0}\ngarbage\n{"n":2}\n';
    writeFileSync(path, text);
    const { journal, records, corrupt } = await Journal.open<Rec>(path, { corrupt: 'salvage' });
    expect(nums(records)).toEqual([0, 2]);
    expect(corrupt).toMatchObject([{ line: 2, offset: 8 }]);
    await journal.append({ n: 3 });
    await journal.close();
    expect(nums((await Journal.read<Rec>(path)).records)).toEqual([0, 2, 3]);
    const aside = readdirSync(dir).filter((f) => f.startsWith('j.jsonl.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0]), 'utf8')).toBe(text);
  });

  it('a failed write fails its batch and every append queued behind it, cuts the file back, and recovers', async () => {
    const path = join(dir, 'j.jsonl');
    const failures: Error[] = [];
    const order: string[] = [];
    const { journal: j } = await Journal.open<Rec>(path, {
      onWriteFailure: (e) => {
        failures.push(e);
        order.push('hook');
      },
    });
    await j.append({ n: 0 });
    const size = statSync(path).size;
    // The write lands half of its bytes, then the disk is full.
    const restore = inject(j, 'write', async (orig, buf, off, len, pos) => {
      await orig(buf, off, Math.floor((len as number) / 2), pos);
      throw enospc();
    });
    const batch = [1, 2, 3].map((n) => j.append({ n }).then(() => 'ok', (e: Error) => (order.push('reject'), e)));
    const results = await Promise.all(batch);
    for (const r of results) expect(r).toBeInstanceOf(StorageFullError);
    expect(order[0]).toBe('hook'); // the owner rolls back before any writer hears of it
    expect(failures).toHaveLength(1);
    expect(statSync(path).size).toBe(size); // the half-written batch is gone
    restore();
    await j.append({ n: 4 });
    await j.close();
    expect(nums((await Journal.read<Rec>(path)).records)).toEqual([0, 4]);
    expect(j.stats()).toMatchObject({ failedBatches: 1, records: 2 });
  });

  it('a short write (fewer bytes than asked) fails the batch; a failed fdatasync is a 503-kind error', async () => {
    const path = join(dir, 'j.jsonl');
    const { journal: j } = await Journal.open<Rec>(path);
    await j.append({ n: 0 });
    let restore = inject(j, 'write', (orig, buf, off, len, pos) => orig(buf, off, (len as number) - 3, pos));
    const short = await j.append({ n: 1 }).catch((e: unknown) => e);
    expect(short).toBeInstanceOf(StorageFullError);
    expect((short as Error).message).toMatch(/short write/);
    restore();
    restore = inject(j, 'datasync', async () => {
      throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    });
    const eio = await j.append({ n: 2 }).catch((e: unknown) => e);
    expect(eio).toBeInstanceOf(StorageUnavailableError);
    restore();
    await j.append({ n: 3 });
    await j.close();
    expect(readFileSync(path, 'utf8')).toBe('{"n":0}\n{"n":3}\n');
  });

  it('compacts in the queue: appends made meanwhile land after the snapshot', async () => {
    const path = join(dir, 'j.jsonl');
    const { journal: j } = await Journal.open<Rec>(path);
    // The owner's live state: the snapshot is taken from it when the compaction runs.
    const live: Rec[] = [];
    const add = (n: number) => (live.push({ n }), j.append({ n }));
    await Promise.all([0, 1, 2].map(add));
    live.splice(0, 2); // 0 and 1 are dead
    const compacted = j.compact(() => [...live]);
    const during = add(3); // made while the compaction is queued: written, and in the snapshot or after it
    await Promise.all([compacted, during]);
    await add(4);
    await j.close();
    expect(nums((await Journal.read<Rec>(path)).records)).toEqual([2, 3, 4]);
    expect(j.stats()).toMatchObject({ compactions: 1, records: 3 });
  });

  it('a failed compaction leaves the journal intact, rejects only itself, and appends go on', async () => {
    const path = join(dir, 'j.jsonl');
    const { journal: j } = await Journal.open<Rec>(path);
    await j.append({ n: 0 });
    const failing = j.compact(() => {
      throw enospc();
    });
    await expect(failing).rejects.toBeInstanceOf(StorageFullError);
    await j.append({ n: 1 });
    await j.close();
    expect(nums((await Journal.read<Rec>(path)).records)).toEqual([0, 1]);
    expect(readdirSync(dir)).toEqual(['j.jsonl']); // no temp file left
  });

  describe('preallocate (a zero tail written ahead of the records)', () => {
    it('keeps zeros written past the last record, so most batches do not change the file size', async () => {
      const path = join(dir, 'j.jsonl');
      const P = 16 * 1024;
      const { journal: j } = await Journal.open<Rec>(path, { preallocate: P });
      expect(statSync(path).size).toBeGreaterThanOrEqual(P); // extended at open
      const sizes = new Set<number>();
      for (let n = 0; n < 400; n++) {
        await j.append({ n, text: 'x'.repeat(50) });
        sizes.add(statSync(path).size);
        expect(statSync(path).size).toBeGreaterThan(j.bytes); // always a zero tail past the records
      }
      // ~28 KB of records: a few extensions, not one per batch.
      expect(j.stats().batches).toBe(400);
      expect(j.stats().extensions).toBeGreaterThan(1);
      expect(j.stats().extensions).toBeLessThan(10);
      expect(sizes.size).toBe(j.stats().extensions);
      await j.close();
      const r = await Journal.read<Rec>(path);
      expect(nums(r.records)).toEqual(Array.from({ length: 400 }, (_, n) => n));
      expect(r.tornBytes).toBe(0);
      expect(r.tailBytes).toBe(statSync(path).size - r.validBytes);
      expect(r.tailBytes).toBeGreaterThan(0);
      // Reopened: appends go right after the last record, over the zeros.
      const again = await Journal.open<Rec>(path, { preallocate: P });
      expect(again.records).toHaveLength(400);
      await again.journal.append({ n: 400 });
      await again.journal.close();
      expect(nums((await Journal.read<Rec>(path)).records).slice(-2)).toEqual([399, 400]);
      // A journal opened without the option reads and appends to it the same way.
      const plain = await Journal.open<Rec>(path);
      await plain.journal.append({ n: 401 });
      await plain.journal.close();
      expect(nums((await Journal.read<Rec>(path)).records).slice(-3)).toEqual([399, 400, 401]);
    });

    it('a torn batch inside the zero tail is dropped and cut on open; a NUL before a complete line is corruption', async () => {
      const path = join(dir, 'j.jsonl');
      const good = '{"n":0}\n{"n":1}\n';
      const torn = '{"n":2,"te';
      writeFileSync(path, Buffer.concat([Buffer.from(good + torn), Buffer.alloc(5000)]));
      let r = await Journal.read<Rec>(path);
      expect(nums(r.records)).toEqual([0, 1]);
      expect(r.tornBytes).toBe(torn.length);
      expect(r.validBytes).toBe(good.length);
      // A batch whose first page never reached the disk: zeros, then the rest of it, unterminated.
      writeFileSync(path, Buffer.concat([Buffer.from(good), Buffer.alloc(4096), Buffer.from('"x"}'), Buffer.alloc(100)]));
      r = await Journal.read<Rec>(path);
      expect(nums(r.records)).toEqual([0, 1]);
      expect(r.tornBytes).toBe(4096 + 4);
      const { journal, tornBytes } = await Journal.open<Rec>(path, { preallocate: 8192 });
      expect(tornBytes).toBe(4100);
      await journal.append({ n: 3 });
      await journal.close();
      expect(nums((await Journal.read<Rec>(path)).records)).toEqual([0, 1, 3]);
      // Zeros in the middle, a complete record after them: not a tail (something after it was written).
      writeFileSync(path, Buffer.concat([Buffer.from(good), Buffer.alloc(10), Buffer.from('\n{"n":2}\n'), Buffer.alloc(100)]));
      await expect(Journal.read<Rec>(path)).rejects.toMatchObject({ line: 3, offset: good.length });
      await expect(Journal.open<Rec>(path, { preallocate: 8192 })).rejects.toBeInstanceOf(JournalCorruptError);
    });

    it('a disk too full for the zeros still takes the records (written alone)', async () => {
      const path = join(dir, 'j.jsonl');
      const P = 64 * 1024;
      const { journal: j } = await Journal.open<Rec>(path, { preallocate: P });
      await j.append({ n: 0 });
      const fh = (j as unknown as { fh: { writev: (...a: unknown[]) => Promise<unknown> } }).fh;
      fh.writev = () => Promise.reject(enospc()); // every write with zeros fails
      const big = 'y'.repeat(1000);
      for (let n = 1; n <= 100; n++) await j.append({ n, text: big }); // ~100 KB: past the zero tail
      await j.close();
      expect(nums((await Journal.read<Rec>(path)).records)).toEqual(Array.from({ length: 101 }, (_, n) => n));
      expect(j.stats().failedBatches).toBe(0);
    });

    it('every acknowledged append survives kill -9 of the writing process, and the journal reopens for appends', async () => {
      // The journal bundled into a temp dir (with node_modules beside it) and run in a child process.
      const root = fileURLToPath(new URL('../..', import.meta.url));
      const out = join(dir, 'child');
      symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
      await build({ entryPoints: [join(root, 'shared/fs/journal.ts')], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: join(out, 'journal.mjs'), logLevel: 'silent' });
      const path = join(dir, 'j.jsonl');
      const js = `
        const { Journal } = await import(${JSON.stringify(join(out, 'journal.mjs'))});
        const { journal } = await Journal.open(${JSON.stringify(path)}, { preallocate: 8192 });
        let n = 0;
        for (;;) {
          const batch = Array.from({ length: 4 }, () => n++);
          await Promise.all(batch.map((k) => journal.append({ n: k, text: 'z'.repeat(40) }).then(() => process.stdout.write(k + '\\n'))));
        }`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', js], { stdio: ['ignore', 'pipe', 'inherit'] });
      const acked: number[] = [];
      let buf = '';
      await new Promise<void>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
        child.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          const lines = buf.split('\n');
          buf = lines.pop()!;
          for (const l of lines) acked.push(Number(l));
          if (acked.length >= 600) {
            child.removeAllListeners('exit');
            child.kill('SIGKILL');
            child.once('exit', () => resolve());
          }
        });
      });
      const { journal, records, validBytes } = await Journal.open<Rec>(path, { preallocate: 8192 });
      const have = new Set(nums(records));
      for (const n of acked) expect(have.has(n)).toBe(true);
      expect(statSync(path).size).toBeGreaterThan(validBytes); // it died with a zero tail ahead (~48 KB written: several extensions)
      await journal.append({ n: -1 });
      await journal.close();
      const after = nums((await Journal.read<Rec>(path)).records);
      expect(after).toHaveLength(records.length + 1);
      expect(after[after.length - 1]).toBe(-1);
    });
  });
});
