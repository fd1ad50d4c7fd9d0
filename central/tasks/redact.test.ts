import { describe, expect, it } from 'vitest';
import { REDACTED, taskView } from './redact.js';
import type { TaskDoc } from './service.js';

const task = (over: Partial<TaskDoc>): TaskDoc => ({
  id: 't', site: 's', agent: 'a', machine: 'm', kind: 'ping', payload: { message: 'p' }, seq: 1, state: 'succeeded',
  createdAt: 'x', updatedAt: 'x', expiresAt: 'x', signed: { canonical: 'c', signature: 's' }, history: [], output: 'out', ...over,
});

describe('task views', () => {
  it('never shows the signed envelope', () => {
    expect(taskView(task({}), 'admin')).not.toHaveProperty('signed');
  });
  it('shows a secret task’s payload and output to admins only', () => {
    const t = task({ secret: true });
    expect(taskView(t, 'admin')).toMatchObject({ payload: { message: 'p' }, output: 'out' });
    for (const role of ['operator', 'viewer'] as const) expect(taskView(t, role)).toMatchObject({ payload: REDACTED, output: REDACTED });
  });
  it('never shows a run-script payload or output to viewers', () => {
    const t = task({ kind: 'run-script', payload: { scriptB64: 'ZWNobyBoaQ==' } });
    expect(taskView(t, 'viewer')).toMatchObject({ payload: REDACTED, output: REDACTED });
    expect(taskView(t, 'operator')).toMatchObject({ payload: { scriptB64: 'ZWNobyBoaQ==' }, output: 'out' });
    expect(taskView(task({}), 'viewer')).toMatchObject({ payload: { message: 'p' }, output: 'out' });
  });
});

describe('Ansible connection tasks', () => {
  it('never shows an exec, put-file or fetch-file payload or output to viewers', () => {
    for (const kind of ['exec', 'put-file', 'fetch-file']) {
      const t = task({ kind, payload: { cmdB64: 'aWQ=' } });
      expect(taskView(t, 'viewer'), kind).toMatchObject({ payload: REDACTED, output: REDACTED });
      expect(taskView(t, 'operator'), kind).toMatchObject({ payload: { cmdB64: 'aWQ=' }, output: 'out' });
    }
  });
});
