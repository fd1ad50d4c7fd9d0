import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from './journal.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'journal-test-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

type Rec = { n: number; text?: string };

describe('Journal', () => {
  it('makes every acknowledged append readable, in order, with group commit', async () => {
    const path = join(dir, 'j.jsonl');
    const j = new Journal<Rec>(path);
    const commits: number[] = [];
    j.onCommit = (_s, n) => commits.push(n);
    await j.open();
    const N = 200;
    await Promise.all(Array.from({ length: N }, (_, n) => j.append({ n, text: 'é✓' })));
    await j.close();
    const { records, tornBytes } = await Journal.readAll<Rec>(path);
    expect(records.map((r) => r.n)).toEqual(Array.from({ length: N }, (_, n) => n));
    expect(records[5].text).toBe('é✓');
    expect(tornBytes).toBe(0);
    // Concurrent appends share fsyncs: fewer commits than records, and every record counted once.
    expect(commits.reduce((a, b) => a + b, 0)).toBe(N);
    expect(commits.length).toBeLessThan(N);
    expect(j.bytes).toBe(statSync(path).size);
  });

  it('rejects appends after close', async () => {
    const j = new Journal<Rec>(join(dir, 'j.jsonl'));
    await j.open();
    await j.close();
    await expect(j.append({ n: 1 })).rejects.toThrow(/closed/);
  });

  it('ignores a torn tail on read (unterminated line, or a partly written multi-byte character)', async () => {
    const path = join(dir, 'j.jsonl');
    const good = '{"n":0}\n{"n":1}\n';
    writeFileSync(path, good + '{"n":2,"te');
    let r = await Journal.readAll<Rec>(path);
    expect(r.records).toEqual([{ n: 0 }, { n: 1 }]);
    expect(r.tornBytes).toBe(Buffer.byteLength('{"n":2,"te'));
    expect(r.validBytes).toBe(Buffer.byteLength(good));

    // Torn in the middle of "✓" (3 bytes in UTF-8): counts raw bytes, not decoded characters.
    const tail = Buffer.concat([Buffer.from('{"n":2,"text":"'), Buffer.from('✓').subarray(0, 2)]);
    writeFileSync(path, Buffer.concat([Buffer.from(good), tail]));
    r = await Journal.readAll<Rec>(path);
    expect(r.records).toHaveLength(2);
    expect(r.tornBytes).toBe(tail.length);

    // A garbage line (a crash left zeroes) ends the readable part; what follows was never acknowledged.
    writeFileSync(path, good + '\0\0\0\0\n{"n":3}\n');
    r = await Journal.readAll<Rec>(path);
    expect(r.records.map((x) => x.n)).toEqual([0, 1]);

    expect(await Journal.readAll(join(dir, 'missing.jsonl'))).toEqual({ records: [], tornBytes: 0, validBytes: 0 });
  });

  it('cuts a torn tail when reopened, so records appended afterwards survive the next read', async () => {
    const path = join(dir, 'j.jsonl');
    const first = new Journal<Rec>(path);
    await first.open();
    await first.append({ n: 0 });
    await first.close();
    appendFileSync(path, '{"n":1,"text":"crash here'); // a write that was never acknowledged

    const second = new Journal<Rec>(path);
    await second.open();
    await second.append({ n: 2 });
    await second.append({ n: 3 });
    await second.close();

    const { records, tornBytes } = await Journal.readAll<Rec>(path);
    expect(records.map((r) => r.n)).toEqual([0, 2, 3]);
    expect(tornBytes).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe('{"n":0}\n{"n":2}\n{"n":3}\n');
  });

  it('truncate() empties the journal after draining pending appends', async () => {
    const path = join(dir, 'j.jsonl');
    const j = new Journal<Rec>(path);
    await j.open();
    const pending = j.append({ n: 1 });
    await j.truncate();
    await pending;
    expect(j.bytes).toBe(0);
    expect(statSync(path).size).toBe(0);
    await j.append({ n: 2 });
    await j.close();
    expect((await Journal.readAll<Rec>(path)).records).toEqual([{ n: 2 }]);
  });
});
