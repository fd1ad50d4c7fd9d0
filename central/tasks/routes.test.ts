import { describe, expect, it } from 'vitest';
import { AGENTS, type AgentDoc } from '../agents/collections.js';
import { memoryApiDeps } from '../all-collections.test-support.js';
import { createApp } from '../api/app.js';
import { sitesFeature } from '../sites/feature.js';
import { tasksFeature } from './feature.js';

describe('task routes: Prefer: return=minimal', () => {
  async function central() {
    const deps = await memoryApiDeps();
    const token = (await deps.tokens.create({ role: 'operator' })).token;
    const app = createApp(deps, { features: [sitesFeature(), tasksFeature()] });
    const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
      app.request(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers } });
    expect((await send('POST', '/api/v1/sites', { name: 's1' })).status).toBe(201);
    const agent: AgentDoc = { id: 'a1', site: 's1', name: 'a1', certFingerprint: 'fp', certSerial: '1', sealPublicKey: 'x', agentVersion: 't', nextSeq: 1, createdAt: 'x', updatedAt: 'x' };
    await deps.store.put(AGENTS, agent);
    return { send };
  }

  it('leaves the payload out of the create and the get answers, and says so; without it the payload is there', async () => {
    const { send } = await central();
    const full = await send('POST', '/api/v1/tasks', { site: 's1', kind: 'ping', payload: {} });
    expect(full.status).toBe(201);
    expect(full.headers.get('preference-applied')).toBeNull();
    expect(await full.json()).toHaveProperty('payload');

    const created = await send('POST', '/api/v1/tasks', { site: 's1', kind: 'ping', payload: {} }, { prefer: 'return=minimal' });
    expect(created.status).toBe(201);
    expect(created.headers.get('preference-applied')).toBe('return=minimal');
    const body = (await created.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ site: 's1', kind: 'ping', state: 'queued' });
    expect(body).not.toHaveProperty('payload');
    expect(body).not.toHaveProperty('signed');

    const got = await send('GET', `/api/v1/tasks/${body.id}`, undefined, { prefer: 'handling=lenient, return=minimal' });
    expect(got.status).toBe(200);
    expect(got.headers.get('preference-applied')).toBe('return=minimal');
    expect(await got.json()).not.toHaveProperty('payload');
    expect(await (await send('GET', `/api/v1/tasks/${body.id}`)).json()).toHaveProperty('payload');
  });

  it('ignores other preferences (return=representation keeps the payload)', async () => {
    const { send } = await central();
    const r = await send('POST', '/api/v1/tasks', { site: 's1', kind: 'ping', payload: {} }, { prefer: 'return=representation' });
    expect(r.status).toBe(201);
    expect(r.headers.get('preference-applied')).toBeNull();
    expect(await r.json()).toHaveProperty('payload');
  });
});
