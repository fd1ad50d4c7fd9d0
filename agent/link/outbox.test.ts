import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReportMsg } from '../../shared/protocol/messages.js';
import { Outbox } from './outbox.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'outbox-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

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
});
