import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../agent-link/support.js';
import { startInProcessCentral, taskIdsIn, type InProcessCentral, type SimAgent } from './in-process.js';

/**
 * Two agents at one site (issue 11, item 11): a machine's tasks go to the agent that serves it (the one
 * that leased it or discovered it), never to the most recently seen agent.
 */
let central: InProcessCentral;
let a: SimAgent;
let b: SimAgent;

beforeAll(async () => {
  central = await startInProcessCentral();
  expect((await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } })).status).toBe(201);
  for (const [name, mac] of [['m-a', '52:54:00:aa:00:01'], ['m-b', '52:54:00:aa:00:02'], ['m-new', '52:54:00:aa:00:03']]) {
    expect((await central.request('POST', '/api/v1/machines', { body: { name, site: 'dc1', macs: [mac] } })).status).toBe(201);
  }
  a = await central.joinAgent('dc1', 'rack-a');
  b = await central.joinAgent('dc1', 'rack-b');
}, 60_000);
afterAll(async () => {
  await central?.close();
});

const lease = (mac: string, address: string) => ({ type: 'lease', mac, address, subnet: '198.18.0.0/24', expiresAt: new Date(Date.now() + 3600_000).toISOString() });
const setNetboot = (machine: string) => central.request('POST', '/api/v1/tasks', { body: { site: 'dc1', machine, kind: 'set-netboot', payload: { netboot: false } } });

describe('task routing at a site with two agents', () => {
  it('refuses a machine task while no agent of the multi-agent site has served the machine', async () => {
    const r = await setNetboot('m-new');
    expect(r.status).toBe(409);
    expect(r.json.error.message).toMatch(/m-new.*has not been served/);
  });

  it('sends each machine task to the agent that leased the machine, whichever agent was seen last', async () => {
    await a.event('lease', lease('52:54:00:aa:00:01', '198.18.0.10'));
    await b.event('lease', lease('52:54:00:aa:00:02', '198.18.0.11'));
    expect((await central.request('GET', '/api/v1/machines/m-a')).json.servedBy).toBe(a.id);
    expect((await central.request('GET', '/api/v1/machines/m-b')).json.servedBy).toBe(b.id);
    const ids: Record<string, string[]> = { a: [], b: [] };
    for (let i = 0; i < 3; i++) {
      const ta = await setNetboot('m-a');
      const tb = await setNetboot('m-b');
      expect([ta.status, tb.status]).toEqual([201, 201]);
      expect(ta.json.agent).toBe(a.id);
      expect(tb.json.agent).toBe(b.id);
      ids.a.push(ta.json.id);
      ids.b.push(tb.json.id);
    }
    await waitFor('both agents received their tasks', () => ids.a.every((id) => taskIdsIn(a.frames).includes(id)) && ids.b.every((id) => taskIdsIn(b.frames).includes(id)), 10_000);
    expect(taskIdsIn(a.frames).filter((id) => ids.b.includes(id))).toEqual([]);
    expect(taskIdsIn(b.frames).filter((id) => ids.a.includes(id))).toEqual([]);
  });

  it('follows the machine when another agent of the site leases it next', async () => {
    await b.event('lease', lease('52:54:00:aa:00:01', '198.18.0.12'));
    const t = await setNetboot('m-a');
    expect(t.json.agent).toBe(b.id);
  });
});
