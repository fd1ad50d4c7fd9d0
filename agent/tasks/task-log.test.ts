import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TaskLog, type TaskRecord } from './task-log.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'tasklog-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const rec = (seq: number, state: TaskRecord['state'] = 'accepted'): TaskRecord => ({ id: `t${seq}`, seq, kind: 'ping', machine: null, state, at: new Date(0).toISOString() });

describe('TaskLog', () => {
  it('remembers tasks and the high-water sequence across a reopen (replay protection after restart)', async () => {
    const path = join(dir, 'tasks.jsonl');
    const log = new TaskLog(path);
    await log.open();
    expect(log.lastSeq).toBe(0);
    await log.record(rec(3));
    await log.record(rec(3, 'succeeded'));
    await log.record(rec(9));
    await log.record(rec(5, 'rejected')); // a lower seq never lowers the high-water mark
    expect(log.lastSeq).toBe(9);
    await log.close();

    const again = new TaskLog(path);
    await again.open();
    expect(again.lastSeq).toBe(9);
    expect(again.get('t3')?.state).toBe('succeeded'); // the latest record of a task wins
    expect(again.get('t9')?.state).toBe('accepted');
    expect(again.get('t4')).toBeUndefined();
    await again.close();
  });

  it('survives a torn tail', async () => {
    const path = join(dir, 'tasks.jsonl');
    const log = new TaskLog(path);
    await log.open();
    await log.record(rec(1, 'succeeded'));
    await log.close();
    appendFileSync(path, '{"id":"t2","seq":2,"ki');
    const again = new TaskLog(path);
    await again.open();
    expect(again.lastSeq).toBe(1);
    expect(again.get('t1')?.state).toBe('succeeded');
    await again.record(rec(2));
    await again.close();
    const third = new TaskLog(path);
    await third.open();
    expect(third.lastSeq).toBe(2);
    await third.close();
  });

  it('keeps nothing in memory of a record the disk refused (a redelivery is not taken for a known task)', async () => {
    const log = new TaskLog(join(dir, 'tasks.jsonl'));
    await log.open();
    await log.record(rec(3));
    const inner = (log as unknown as { log: { append: () => Promise<void> } }).log;
    const orig = inner.append;
    inner.append = async () => {
      throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
    };
    await expect(log.record(rec(4))).rejects.toThrow(/ENOSPC/);
    await expect(log.record(rec(3, 'succeeded'))).rejects.toThrow(/ENOSPC/);
    expect(log.get('t4')).toBeUndefined();
    expect(log.get('t3')?.state).toBe('accepted');
    expect(log.lastSeq).toBe(3);
    inner.append = orig;
    await log.close();
  });
});
