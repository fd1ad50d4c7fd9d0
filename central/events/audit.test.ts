import { describe, expect, it } from 'vitest';
import type { WriteContext } from '../api/write-context.js';
import type { Doc, WriteOp } from '../store/types.js';
import { auditRecord } from './audit.js';

const ctx: WriteContext = { tokenId: 't1', role: 'operator', method: 'POST', route: '/api/v1/tasks/batch', path: '/api/v1/tasks/batch', open: true };

const task = (over: Partial<Doc> = {}): Doc => ({
  id: 'task-1',
  site: 'dc1',
  agent: 'a1',
  machine: null,
  kind: 'run-script',
  payload: { script: 'echo the-payload', env: { password: 'plain' } },
  seq: 7,
  state: 'queued',
  signed: { envelope: 'e30', sig: 'the-signature' },
  history: [{ state: 'queued', at: 'T0' }],
  ...over,
});

describe('auditRecord', () => {
  it('records tasks by reference: a summary and no copy of the payload or the signed envelope', () => {
    const put: WriteOp = { type: 'put', collection: 'tasks', doc: task() };
    const rec = auditRecord(ctx, [put], () => undefined, new Set())!;
    expect(rec.objects).toEqual(['task/task-1']);
    expect(rec.site).toBe('dc1');
    expect(rec.changes).toEqual([{ object: 'task/task-1', collection: 'tasks', id: 'task-1', op: 'create', summary: { kind: 'run-script', state: 'queued', site: 'dc1', agent: 'a1', machine: null, seq: 7 } }]);
    const text = JSON.stringify(rec);
    expect(text).not.toContain('the-payload');
    expect(text).not.toContain('the-signature');
    expect(text).not.toContain('plain');
  });

  it("names the fields a task's update changed", () => {
    const prev = task();
    const next = { ...prev, state: 'cancelled', history: [...(prev.history as unknown[]), { state: 'cancelled', at: 'T1' }], reason: 'cancelled by operator' };
    delete (next as Partial<Doc>).signed;
    const rec = auditRecord(ctx, [{ type: 'put', collection: 'tasks', doc: next }], () => prev, new Set())!;
    expect(rec.changes[0]).toMatchObject({ op: 'update', summary: { state: 'cancelled' } });
    expect(rec.changes[0]!.fields!.sort()).toEqual(['history', 'reason', 'signed', 'state']);
    expect(rec.changes[0]).not.toHaveProperty('before');
    expect(rec.changes[0]).not.toHaveProperty('after');
  });

  it('keeps masked before/after copies for inventory objects', () => {
    const prev = { id: 'm1', name: 'm1', site: 'dc1', params: { bmc_password: 'hunter2' } };
    const rec = auditRecord(ctx, [{ type: 'put', collection: 'machines', doc: { ...prev, params: { bmc_password: 'hunter3' } } }], () => prev, new Set(['bmc_password']))!;
    expect(rec.changes[0]).toMatchObject({ object: 'machine/m1', op: 'update', before: { params: { bmc_password: '[masked]' } }, after: { params: { bmc_password: '[masked]' } } });
  });
});
