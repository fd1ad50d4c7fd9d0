import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MachineQueue, type MachineTask } from './machine-queue.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'mqueue-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const task = (id: string, machine = 'm1'): MachineTask => ({ id, machine, kind: 'reboot', signed: { canonical: '{}', signature: 'sig' }, expiresAt: new Date(Date.now() + 60_000).toISOString() });

describe('MachineQueue', () => {
  it('keeps queued and taken tasks across a reopen', async () => {
    const path = join(dir, 'q.jsonl');
    const q = new MachineQueue(path);
    await q.open();
    await q.add(task('a'));
    await q.add(task('b'));
    expect((await q.take('m1'))?.id).toBe('a');
    await q.close();
    const again = new MachineQueue(path);
    await again.open();
    expect(again.get('a')).toBeDefined(); // taken, not done: still known
    expect((await again.take('m1'))?.id).toBe('b');
    await again.close();
  });

  it('a task the disk refused to queue is not queued; a hand-over it refused to record stays queued', async () => {
    const q = new MachineQueue(join(dir, 'q.jsonl'));
    await q.open();
    await q.add(task('a'));
    const inner = (q as unknown as { log: { append: () => Promise<void> } }).log;
    const orig = inner.append;
    inner.append = async () => {
      throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
    };
    await expect(q.add(task('b'))).rejects.toThrow(/ENOSPC/);
    expect(q.get('b')).toBeUndefined();
    await expect(q.take('m1')).rejects.toThrow(/ENOSPC/);
    inner.append = orig;
    expect((await q.take('m1'))?.id).toBe('a'); // still there to hand over
    await q.add(task('b')); // and b can be queued again
    expect(q.get('b')).toBeDefined();
    await q.close();
  });
});
