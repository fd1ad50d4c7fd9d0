import { describe, expect, it } from 'vitest';
import { memoryApiDeps } from '../all-collections.test-support.js';
import { sitesFeature } from '../sites/feature.js';
import { createApp } from './app.js';
import { applyMergePatch, expandMergePatch } from './merge-patch.js';

describe('JSON merge patch (RFC 7386)', () => {
  it('merges objects, removes on null, replaces scalars and arrays', () => {
    expect(applyMergePatch({ a: 1, b: { c: 2, d: 3 }, e: [1] }, { a: null, b: { c: 9, d: null }, e: [2], f: 'x' })).toEqual({ b: { c: 9 }, e: [2], f: 'x' });
    expect(applyMergePatch('old', { a: 1 })).toEqual({ a: 1 });
  });
  it('never merges into a sealed secret: a new value replaces it whole', () => {
    const sealed = { $sealed: { agent1: 'box' } };
    expect(expandMergePatch({ params: { pw: sealed, rack: 'r1' } }, { params: { zone: 'z' } })).toEqual({ params: { pw: sealed, rack: 'r1', zone: 'z' } });
    expect(expandMergePatch({ params: { pw: sealed } }, { params: { pw: { user: 'x' } } })).toEqual({ params: { pw: { user: 'x' } } });
  });
});

describe('PATCH with application/merge-patch+json and If-Match', () => {
  async function central() {
    const deps = await memoryApiDeps();
    const store = deps.store;
    const token = (await deps.tokens.create({ role: 'admin' })).token;
    const app = createApp(deps, { features: [sitesFeature()] });
    const send = (method: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
      app.request(path, { method, body: JSON.stringify(body), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers } });
    return { store, send };
  }

  it('merges params (a plain PATCH replaces them) and removes a param set to null', async () => {
    const { send } = await central();
    expect((await send('POST', '/api/v1/sites', { name: 'dc1', params: { a: 1, b: 2 } })).status).toBe(201);
    const merged = await send('PATCH', '/api/v1/sites/dc1', { params: { c: 3, a: null } }, { 'content-type': 'application/merge-patch+json' });
    expect(merged.status).toBe(200);
    expect((await merged.json()).params).toEqual({ b: 2, c: 3 });
    const replaced = await send('PATCH', '/api/v1/sites/dc1', { params: { z: 0 } });
    expect((await replaced.json()).params).toEqual({ z: 0 });
  });
  it('leaves a stored sealed secret as it was when other params merge', async () => {
    const { store, send } = await central();
    expect((await send('POST', '/api/v1/sites', { name: 'dc1', params: { a: 1 } })).status).toBe(201);
    const site = store.findUnique<{ id: string; params: Record<string, unknown> }>('sites', 'name', 'dc1')!;
    const sealed = { $sealed: { agent1: 'c2VhbGVk' } };
    await store.put('sites', { ...site, params: { ...site.params, pw: sealed } });
    const res = await send('PATCH', '/api/v1/sites/dc1', { params: { rack: 'r1' } }, { 'content-type': 'application/merge-patch+json' });
    expect(res.status).toBe(200);
    expect(store.findUnique<{ params: Record<string, unknown> }>('sites', 'name', 'dc1')!.params).toEqual({ a: 1, pw: sealed, rack: 'r1' });
  });
  it('refuses a PATCH whose If-Match is not the updatedAt stored now, changing nothing', async () => {
    const { store, send } = await central();
    const created = await (await send('POST', '/api/v1/sites', { name: 'dc1', description: 'one' })).json();
    const stale = `"${created.updatedAt}"`;
    await new Promise((r) => setTimeout(r, 5));
    expect((await send('PATCH', '/api/v1/sites/dc1', { description: 'two' }, { 'if-match': stale })).status).toBe(200);
    const refused = await send('PATCH', '/api/v1/sites/dc1', { description: 'three' }, { 'if-match': stale });
    expect(refused.status).toBe(409);
    expect(store.findUnique<{ description: string }>('sites', 'name', 'dc1')!.description).toBe('two');
  });
});
