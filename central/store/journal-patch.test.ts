import { describe, expect, it } from 'vitest';
import { applyPatch, isPatchOp, patchOf } from './journal-patch.js';

const task = { id: 't1', site: 's', agent: 'a', payload: { x: 1 }, state: 'queued', signed: { canonical: '{…}', signature: 'sig' }, history: [{ state: 'queued', at: '1' }], updatedAt: '1', note: 'n' };

describe('journal patches', () => {
  it('hold only the changed fields, appended array items and removed fields, and rebuild the document', () => {
    const next = { ...task, state: 'succeeded', updatedAt: '2', history: [...task.history, { state: 'accepted', at: '2' }, { state: 'succeeded', at: '2' }], signed: undefined, note: undefined };
    delete (next as Record<string, unknown>).note;
    const p = patchOf('tasks', task, next);
    expect(p).toEqual({ type: 'patch', collection: 'tasks', id: 't1', set: { state: 'succeeded', updatedAt: '2' }, unset: ['signed', 'note'], append: { history: { from: 1, items: next.history.slice(1) } } });
    const rebuilt = applyPatch(task, JSON.parse(JSON.stringify(p)));
    expect(rebuilt).toEqual(JSON.parse(JSON.stringify(next)));
    expect(isPatchOp(JSON.parse(JSON.stringify(p)))).toBe(true);
    expect(task.history).toHaveLength(1); // the base is not changed in place
  });

  it('replays idempotently: a patch applied over a state that already holds it ends where it ended', () => {
    const mid = { ...task, state: 'accepted', history: [...task.history, { state: 'accepted', at: '2' }] };
    const end = { ...mid, state: 'succeeded', history: [...mid.history, { state: 'succeeded', at: '3' }] };
    const p1 = patchOf('tasks', task, mid);
    const p2 = patchOf('tasks', mid, end);
    expect(applyPatch(applyPatch(end, p1), p2)).toEqual(end);
    expect(applyPatch(applyPatch(applyPatch(task, p1), p2), p2)).toEqual(end);
  });

  it('a replaced (not grown) array is set whole; a short base is refused', () => {
    const next = { ...task, history: [{ state: 'other', at: '9' }, { state: 'x', at: '9' }] };
    expect(patchOf('tasks', task, next).set).toEqual({ history: next.history });
    const p = patchOf('tasks', task, { ...task, history: [...task.history, { state: 'accepted', at: '2' }] });
    expect(() => applyPatch({ ...task, history: [] }, p)).toThrow(/appends to history after item 1/);
  });

  it('keeps a field named __proto__ as data, and refuses malformed ops', () => {
    const base = { id: 'x', a: 1, b: 2, c: 3 };
    const p = JSON.parse('{"type":"patch","collection":"things","id":"x","set":{"__proto__":{"polluted":true}}}');
    const doc = applyPatch(base, p);
    expect(Object.getPrototypeOf(doc)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(doc)).toContain('__proto__');
    expect(isPatchOp({ type: 'patch', collection: 'c', id: 'x', unset: [1] })).toBe(false);
    expect(isPatchOp({ type: 'patch', collection: 'c', id: 'x', append: { h: { from: -1, items: [] } } })).toBe(false);
    expect(isPatchOp({ type: 'patch', collection: 'c', id: 'x', set: [] })).toBe(false);
  });
});
