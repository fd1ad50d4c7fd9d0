import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessCentral, type InProcessCentral } from '../central/in-process.js';
import { promSamples } from '../support/prometheus.js';

/** Issue 19: the central's /metrics carry the fleet: tasks by state, agents connected and joined per site, machines per site and state, store commit latency. */
let central: InProcessCentral;
beforeAll(async () => {
  central = await startInProcessCentral();
}, 60_000);
afterAll(async () => {
  await central?.close();
});


describe('central /metrics', () => {
  it('serves per-site fleet gauges, tasks by state, joins and store commit latency', async () => {
    for (const name of ['dc1', 'dc2']) expect((await central.request('POST', '/api/v1/sites', { body: { name } })).status).toBe(201);
    expect((await central.request('POST', '/api/v1/machines', { body: { name: 'm1', site: 'dc1', macs: ['52:54:00:00:19:11'] } })).status).toBe(201);
    expect((await central.request('POST', '/api/v1/machines', { body: { name: 'm2', site: 'dc2', macs: ['52:54:00:00:19:12'] } })).status).toBe(201);
    const sim = await central.joinAgent('dc1');
    await central.joinAgent('dc2').then((a) => a.close());
    const t = await central.request('POST', '/api/v1/tasks', { body: { site: 'dc1', kind: 'run-script', machine: 'm1', payload: { scriptB64: Buffer.from('true').toString('base64'), timeoutSec: 10 }, ttl: '10m' } });
    expect(t.status, t.text).toBe(201);
    await new Promise((r) => setTimeout(r, 300));
    const m = promSamples((await central.request('GET', '/metrics')).text);
    expect(m.get('underlay_agents_connected{site="dc1"}')).toBe(1);
    expect(m.get('underlay_agents_connected{site="dc2"}')).toBe(0);
    expect(m.get('underlay_agents{site="dc1"}')).toBe(1);
    expect(m.get('underlay_agent_joins_total{site="dc1"}')).toBe(1);
    expect(m.get('underlay_agent_joins_total{site="dc2"}')).toBe(1);
    expect([...m.keys()].filter((k) => k.startsWith('underlay_machines{site="dc1"')).map((k) => m.get(k)).reduce((a, b) => a! + b!, 0)).toBe(1);
    const taskSeries = [...m.keys()].filter((k) => k.startsWith('underlay_tasks{kind="run-script"'));
    expect(taskSeries.length).toBe(1);
    expect(m.get(taskSeries[0]!)).toBe(1);
    expect(m.get('underlay_store_commit_duration_seconds_count')).toBeGreaterThan(0);
    sim.close();
  });
});
