import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReportMsg } from '../../shared/protocol/messages.js';
import type { Logger } from '../../shared/log/logger.js';
import { silentLogger } from '../../shared/log/logger.js';
import { Outbox, OutboxFullError } from './outbox.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'outbox-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ev = (i: number, pad = 0) => ({ type: 'event' as const, id: `e${i}`, kind: 'discovery', data: { i, pad: 'x'.repeat(pad) }, at: new Date(0).toISOString() });
const rep = (i: number): ReportMsg => ({ type: 'report', id: `r${i}`, taskId: `t${i}`, state: 'succeeded', at: new Date(0).toISOString() });

describe('Outbox', () => {
  it('keeps messages in the order they were added; ack removes exactly the acked ids', async () => {
    const ob = new Outbox(join(dir, 'outbox.jsonl'));
    await ob.open();
    const seen: string[] = [];
    ob.onAdd = (m) => seen.push(m.id);
    for (let i = 0; i < 10; i++) await ob.add(rep(i));
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`));
    expect(ob.messages().map((m) => m.id)).toEqual(seen);
    await ob.ack(['r3', 'r0', 'unknown-id']);
    expect(ob.messages().map((m) => m.id)).toEqual(['r1', 'r2', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
    expect(ob.size).toBe(8);
    await ob.ack(['r3']); // a second ack of the same id is harmless
    expect(ob.size).toBe(8);
    await ob.close();
  });

  it('is durable: reopening gives back exactly the unacknowledged messages, in order', async () => {
    const path = join(dir, 'outbox.jsonl');
    const ob = new Outbox(path);
    await ob.open();
    await Promise.all(Array.from({ length: 50 }, (_, i) => ob.add(rep(i)))); // concurrent adds: group commit
    await ob.ack(Array.from({ length: 25 }, (_, i) => `r${i * 2}`));
    await ob.close();
    const again = new Outbox(path);
    await again.open();
    expect(again.messages().map((m) => m.id)).toEqual(Array.from({ length: 25 }, (_, i) => `r${i * 2 + 1}`));
    await again.close();
  });

  it('after a crash mid-append (a torn tail) keeps every complete record and appends cleanly', async () => {
    const path = join(dir, 'outbox.jsonl');
    const ob = new Outbox(path);
    await ob.open();
    for (let i = 0; i < 5; i++) await ob.add(rep(i));
    await ob.ack(['r1']);
    await ob.close();
    // simulate kill -9 in the middle of writing the next record (no newline, cut inside a string)
    appendFileSync(path, JSON.stringify({ t: 'add', m: rep(99) }).slice(0, 37));
    const reopened = new Outbox(path);
    await reopened.open();
    expect(reopened.messages().map((m) => m.id)).toEqual(['r0', 'r2', 'r3', 'r4']);
    await reopened.add(rep(5));
    await reopened.close();
    // every line of the file parses again: the torn bytes are gone, not glued to the new record
    for (const line of readFileSync(path, 'utf8').trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    const third = new Outbox(path);
    await third.open();
    expect(third.messages().map((m) => m.id)).toEqual(['r0', 'r2', 'r3', 'r4', 'r5']);
    await third.close();
  });

  it('opens over a corrupt line in the middle: keeps every valid record (also after it) and sets the file aside', async () => {
    const path = join(dir, 'outbox.jsonl');
    const ob = new Outbox(path);
    await ob.open();
    for (let i = 0; i < 3; i++) await ob.add(rep(i));
    await ob.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    writeFileSync(path, [lines[0], '{"t":"add","m":{garbage', '{"t":"add"}', ...lines.slice(1)].join('\n'));
    const again = new Outbox(path);
    await again.open(); // an agent keeps serving its rack over one bad line
    expect(again.messages().map((m) => m.id)).toEqual(['r0', 'r1', 'r2']);
    await again.add(rep(3));
    await again.close();
    expect(readdirSync(dir).filter((f) => f.startsWith('outbox.jsonl.corrupt-'))).toHaveLength(1);
    const third = new Outbox(path);
    await third.open();
    expect(third.messages().map((m) => m.id)).toEqual(['r0', 'r1', 'r2', 'r3']);
    await third.close();
  });

  it('compacts once most records are acked, without losing the pending ones', async () => {
    const path = join(dir, 'outbox.jsonl');
    const ob = new Outbox(path);
    await ob.open();
    for (let b = 0; b < 6; b++) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => ob.add(rep(b * 1000 + i))));
      await ob.ack(Array.from({ length: 1000 }, (_, i) => `r${b * 1000 + i}`).filter((id) => id !== 'r4242'));
    }
    expect(ob.messages().map((m) => m.id)).toEqual(['r4242']);
    await ob.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines.length).toBeLessThan(1000); // compacted (12 000 records were written)
    const again = new Outbox(path);
    await again.open();
    expect(again.messages().map((m) => m.id)).toEqual(['r4242']);
    await again.close();
  });

  describe('bounds', () => {
    /** A logger that records its messages. */
    const recording = () => {
      const lines: string[] = [];
      const log = { ...silentLogger, warn: (_o: unknown, m: string) => lines.push(`warn ${m}`), info: (_o: unknown, m: string) => lines.push(`info ${m}`) } as unknown as Logger;
      return { lines, log };
    };

    it('refuses events past maxRecords with OutboxFullError, stores nothing of them, and takes them again once drained', async () => {
      const path = join(dir, 'outbox.jsonl');
      const { lines, log } = recording();
      const ob = new Outbox(path, { limits: { maxRecords: 10 }, logger: log });
      await ob.open();
      for (let i = 0; i < 10; i++) await ob.add(ev(i));
      const err = await ob.add(ev(10)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OutboxFullError);
      expect((err as OutboxFullError).depth).toMatchObject({ records: 10, maxRecords: 10, full: true });
      expect(ob.depth()).toMatchObject({ records: 10, full: true });
      expect(lines.filter((l) => l.startsWith('warn outbox full'))).toHaveLength(1);
      // A task report is still taken (it is the outcome of a signed task): it counts, events stay refused.
      await ob.add(rep(1));
      expect(ob.size).toBe(11);
      await expect(ob.add(ev(11))).rejects.toBeInstanceOf(OutboxFullError);
      // The central takes some: below 90 % events are accepted again, and the drain is logged.
      await ob.ack(['e0', 'e1', 'e2']);
      expect(ob.depth().full).toBe(false);
      expect(lines.some((l) => l.startsWith('info outbox drained'))).toBe(true);
      await ob.add(ev(12));
      await ob.close();
      const again = new Outbox(path);
      await again.open();
      expect(again.messages().map((m) => m.id)).toEqual(['e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9', 'r1', 'e12']);
      expect(again.depth().records).toBe(9);
      await again.close();
    });

    it('refuses events past maxBytes, and counts bytes back when acked', async () => {
      const ob = new Outbox(join(dir, 'outbox.jsonl'), { limits: { maxBytes: 4096 } });
      await ob.open();
      await ob.add(ev(0, 1500));
      await ob.add(ev(1, 1500));
      expect(ob.depth().bytes).toBeGreaterThan(3000);
      await expect(ob.add(ev(2, 1500))).rejects.toBeInstanceOf(OutboxFullError);
      await ob.add(ev(3, 10)); // a small one still fits
      await ob.ack(['e0']);
      expect(ob.depth().bytes).toBeLessThan(2000);
      await ob.add(ev(2, 1500));
      expect(ob.messages().map((m) => m.id)).toEqual(['e1', 'e3', 'e2']);
      await ob.close();
    });

    it('a message the disk refused is not kept in memory either', async () => {
      const ob = new Outbox(join(dir, 'outbox.jsonl'));
      await ob.open();
      const log = (ob as unknown as { log: { append: () => Promise<void> } }).log;
      const orig = log.append;
      log.append = async () => {
        throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
      };
      await expect(ob.add(ev(0))).rejects.toThrow(/ENOSPC/);
      expect(ob.size).toBe(0);
      expect(ob.depth().bytes).toBe(0);
      log.append = orig;
      await ob.close();
    });
  });
});
