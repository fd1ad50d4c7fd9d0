import { rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../agent-link/support.js';
import { tempDir } from './support.js';
import { startInProcessCentral, type InProcessCentral } from './in-process.js';

/**
 * Issue 11, item 6: one write used to put the central in a crash loop — a param value nested ~3,500
 * levels deep was stored, then overflowed the stack in the desired-state push timer at every start.
 * Now such a write is refused before parsing, and a bad document already in the store (written before
 * the fix) fails only its own push: the central keeps running, starts again and serves.
 */
const nested = (n: number) => JSON.parse('['.repeat(n) + '1' + ']'.repeat(n)) as unknown;
const nestedText = (n: number) => '['.repeat(n) + '1' + ']'.repeat(n);

let central: InProcessCentral;
const dir = tempDir('underlay-deep-');

beforeAll(async () => {
  central = await startInProcessCentral({ dir });
  expect((await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } })).status).toBe(201);
});
afterAll(async () => {
  await central?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('deep JSON', () => {
  it('refuses a body nested past 64 levels with a clear 400, before parsing; nothing is stored', async () => {
    const r = await central.request('POST', '/api/v1/machines', { body: `{"name":"deep","site":"dc1","macs":["52:54:00:00:00:01"],"params":{"p":${nestedText(3500)}}}`, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(/nested deeper than 64 levels/);
    expect((await central.request('GET', '/api/v1/machines')).json.total).toBe(0);
  });

  it('refuses a param value nested past 32 levels (inside the body limit), on every param carrier', async () => {
    for (const [method, path, body] of [
      ['PATCH', '/api/v1/sites/dc1', { params: { p: nested(40) } }],
      ['POST', '/api/v1/profiles', { name: 'deep', params: { p: nested(40) } }],
      ['POST', '/api/v1/params', { name: 'deep', default: nested(40) }],
      ['POST', '/api/v1/machines', { name: 'deep', site: 'dc1', macs: ['52:54:00:00:00:01'], params: { p: nested(40) } }],
    ] as const) {
      const r = await central.request(method, path, { body });
      expect(r.status, `${method} ${path}`).toBe(400);
      expect(r.text, `${method} ${path}`).toMatch(/nest at most 32 levels/);
    }
    expect((await central.request('GET', '/api/v1/sites/dc1')).json.params).toEqual({});
    expect((await central.request('PATCH', '/api/v1/sites/dc1', { body: { params: { ok: nested(20) } } })).status).toBe(200);
  });

  it('a bad document already in the store fails only its own push: the central keeps serving, and starts again', async () => {
    const sim = await central.joinAgent('dc1');
    const site = central.running.deps.store.findUnique<{ id: string; params: Record<string, unknown> }>('sites', 'name', 'dc1')!;
    // As if written before the fix: straight into the store, past every API check.
    const bad = { ...site, params: { p: nested(3500) } }; // the depth of the issue: the store writes it, canonical JSON overflows
    await central.running.deps.store.put('sites', bad);
    central.running.deps.changes.emit({ collection: 'sites', type: 'put', id: site.id, doc: bad });
    const failures = async () => {
      const text = (await central.request('GET', '/metrics')).text;
      return Number(/underlay_callback_failures_total\{where="desired-state push[^"]*"\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    await waitFor('the failed push was counted', async () => (await failures()) > 0, 10_000);
    expect((await central.request('GET', '/healthz')).status).toBe(200);
    expect((await central.request('GET', '/api/v1/sites')).status).toBe(200);
    sim.close();

    await central.close();
    central = await startInProcessCentral({ dir });
    expect((await central.request('GET', '/healthz')).status).toBe(200);
    const again = await central.joinAgent('dc1'); // hello → state push of the bad site: refused, logged
    expect(again.frames.some((f) => f.type === 'welcome')).toBe(true);
    expect((await central.request('POST', '/api/v1/sites', { body: { name: 'dc2' } })).status).toBe(201);
  });

  it('answers 401 to an unauthenticated request without reading its body', async () => {
    const u = new URL(central.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: u.hostname, port: u.port, path: '/api/v1/machines', method: 'POST', ca: central.ca, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        req.destroy();
      });
      req.on('error', (e) => (String(e.message).includes('socket hang up') ? undefined : reject(e)));
      // Only the first chunk of a body that never ends: a server that read bodies before authenticating
      // would wait for the rest, and this promise would never resolve.
      req.write('{"name":"' + 'x'.repeat(64 * 1024));
      setTimeout(() => reject(new Error('no answer before the body ended: the body is read before authentication')), 10_000).unref();
    });
    expect(status).toBe(401);
  });

  it('still enforces the byte limit on an authenticated chunked body (413), and keeps serving', async () => {
    const u = new URL(central.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: u.hostname, port: u.port, path: '/api/v1/sites', method: 'POST', ca: central.ca, headers: { authorization: `Bearer ${central.adminToken}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      req.on('error', (e) => (/hang up|ECONNRESET|EPIPE/.test(String(e.message)) ? undefined : reject(e)));
      req.end('{"name":"big","description":"' + 'x'.repeat(2 * 1024 * 1024) + '"}');
    });
    expect(status).toBe(413);
    expect((await central.request('GET', '/api/v1/sites/big')).status).toBe(404);
  });
});
