import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store, WriteOp } from '../../central/store/types.js';
import { waitFor } from '../agent-link/support.js';
import { startInProcessCentral, type InProcessCentral, type SimAgent } from './in-process.js';

/** Issue 11, item 8 (central side): secret defaults, sealing on marking secret, secret tasks, redaction. */
let central: InProcessCentral;
let sim: SimAgent;
let store: Store;
const tokens: Record<'operator' | 'viewer', string> = { operator: '', viewer: '' };
const isSealed = (v: unknown) => !!v && typeof v === 'object' && '$sealed' in (v as object);

beforeAll(async () => {
  central = await startInProcessCentral();
  store = central.running.deps.store;
  for (const name of ['dc1', 'lonely']) expect((await central.request('POST', '/api/v1/sites', { body: { name } })).status).toBe(201);
  sim = await central.joinAgent('dc1');
  tokens.operator = await central.token('operator');
  tokens.viewer = await central.token('viewer');
}, 60_000);
afterAll(async () => {
  await central?.close();
});

describe('secret params', () => {
  it('refuses a plaintext default on a secret param, at create and by patch, with a clear message', async () => {
    const r = await central.request('POST', '/api/v1/params', { body: { name: 'bmc_password', secret: true, default: 'hunter2' } });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(/secret and cannot have a default/);
    expect((await central.request('POST', '/api/v1/params', { body: { name: 'with_default', default: 'not-a-secret' } })).status).toBe(201);
    expect((await central.request('PATCH', '/api/v1/params/with_default', { body: { secret: true } })).status).toBe(400);
    expect((await central.request('POST', '/api/v1/params', { body: { name: 'bmc_password', secret: true } })).status).toBe(201);
    expect((await central.request('PATCH', '/api/v1/params/bmc_password', { body: { default: 'hunter2' } })).status).toBe(400);
    expect(JSON.stringify(store.list('params').items)).not.toContain('hunter2');
    // A patch of another field keeps the param secret (the patch schema used to default `secret` to false).
    expect((await central.request('PATCH', '/api/v1/params/bmc_password', { body: { description: 'BMC' } })).json.secret).toBe(true);
  });

  it('marking a param secret seals its existing values on machines, sites and profiles in the same store commit', async () => {
    expect((await central.request('POST', '/api/v1/params', { body: { name: 'root_pw' } })).status).toBe(201);
    expect((await central.request('PATCH', '/api/v1/sites/dc1', { body: { params: { root_pw: 'plain-site' } } })).status).toBe(200);
    expect((await central.request('POST', '/api/v1/profiles', { body: { name: 'global', params: { root_pw: 'plain-global' } } })).status).toBe(201);
    expect((await central.request('POST', '/api/v1/machines', { body: { name: 'm1', site: 'dc1', macs: ['52:54:00:00:00:01'], params: { root_pw: 'plain-machine' } } })).status).toBe(201);
    const commits: WriteOp[][] = [];
    const commit = store.commit.bind(store);
    store.commit = (ops) => (commits.push(ops), commit(ops));
    try {
      const r = await central.request('PATCH', '/api/v1/params/root_pw', { body: { secret: true } });
      expect(r.status).toBe(200);
    } finally {
      store.commit = commit;
    }
    const withParam = commits.filter((ops) => ops.some((o) => o.type === 'put' && o.collection === 'params'));
    expect(withParam).toHaveLength(1);
    expect(withParam[0].map((o) => o.collection).sort()).toEqual(['machines', 'params', 'profiles', 'sites']);
    const values = [store.findUnique<{ params: Record<string, unknown> }>('machines', 'name', 'm1')!, store.findUnique<{ params: Record<string, unknown> }>('sites', 'name', 'dc1')!, store.findUnique<{ params: Record<string, unknown> }>('profiles', 'name', 'global')!].map((d) => d.params.root_pw);
    expect(values.every(isSealed)).toBe(true);
    const shown = (await central.request('GET', '/api/v1/machines')).text + (await central.request('GET', '/api/v1/sites')).text + (await central.request('GET', '/api/v1/profiles')).text;
    expect(shown).not.toMatch(/plain-(machine|site|global)/);
  });

  it('refuses to mark a param secret when a value cannot be sealed (no agent at its site): nothing changes', async () => {
    expect((await central.request('POST', '/api/v1/params', { body: { name: 'ipmi_pw' } })).status).toBe(201);
    expect((await central.request('POST', '/api/v1/machines', { body: { name: 'm2', site: 'lonely', macs: ['52:54:00:00:00:02'], params: { ipmi_pw: 'plain-lonely' } } })).status).toBe(201);
    const r = await central.request('PATCH', '/api/v1/params/ipmi_pw', { body: { secret: true } });
    expect(r.status).toBe(409);
    expect(store.findUnique<{ secret: boolean }>('params', 'name', 'ipmi_pw')!.secret).toBe(false);
    expect(store.findUnique<{ params: Record<string, unknown> }>('machines', 'name', 'm2')!.params.ipmi_pw).toBe('plain-lonely');
  });

  it('never shows a plaintext value or default of a secret param stored before these rules (API and agents)', async () => {
    const now = new Date().toISOString();
    await store.put('params', { id: 'legacy', name: 'legacy_pw', schema: {}, secret: true, default: 'legacy-default', createdAt: now, updatedAt: now });
    const m = store.findUnique<{ id: string; params: Record<string, unknown> }>('machines', 'name', 'm1')!;
    await store.put('machines', { ...m, params: { ...m.params, legacy_pw: 'legacy-value' } });
    central.running.deps.changes.emit({ collection: 'params', type: 'put', id: 'legacy' });
    const api = (await central.request('GET', '/api/v1/machines/m1')).text + (await central.request('GET', '/api/v1/params/legacy_pw')).text + (await central.request('GET', '/api/v1/params')).text;
    expect(api).not.toMatch(/legacy-(value|default)/);
    expect((await central.request('GET', '/api/v1/machines/m1')).json.params.legacy_pw).toBe('[secret]');
    const state = await waitFor('a state with the legacy param', () => [...sim.frames].reverse().find((f) => f.type === 'state' && JSON.stringify(f).includes('legacy_pw')), 10_000);
    expect(JSON.stringify(state)).not.toContain('legacy-default');
  });
});

describe('secret tasks', () => {
  it('a task created secret shows its payload to admins only; run-script payloads never to viewers', async () => {
    const created = await central.request('POST', '/api/v1/tasks', { token: tokens.operator, body: { site: 'dc1', kind: 'ping', payload: { message: 'top-secret-payload' }, secret: true } });
    expect(created.status).toBe(201);
    expect(created.json.payload).toBe('[redacted]');
    const id = created.json.id;
    expect((await central.request('GET', `/api/v1/tasks/${id}`)).json.payload).toEqual({ message: 'top-secret-payload' });
    for (const role of ['operator', 'viewer'] as const) {
      expect((await central.request('GET', `/api/v1/tasks/${id}`, { token: tokens[role] })).json.payload).toBe('[redacted]');
      expect((await central.request('GET', '/api/v1/tasks', { token: tokens[role] })).text).not.toContain('top-secret-payload');
    }
    const script = await central.request('POST', '/api/v1/tasks', { body: { site: 'dc1', machine: 'm1', kind: 'run-script', payload: { scriptB64: Buffer.from('echo run-script-body').toString('base64') } } });
    expect(script.status).toBe(201);
    expect((await central.request('GET', `/api/v1/tasks/${script.json.id}`, { token: tokens.viewer })).json.payload).toBe('[redacted]');
    expect((await central.request('GET', `/api/v1/tasks/${script.json.id}`, { token: tokens.operator })).json.payload.scriptB64).toBeDefined();
  });
});
