import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliProgram } from '../support/cli-program.js';
import { startInProcessCentral, type InProcessCentral, type SimAgent } from '../central/in-process.js';

/** Issue 19: the audit log of API writes and agent events, in one stream, listed and watched (API and CLI). */
let central: InProcessCentral;
let sim: SimAgent;
let conn: { url: string; token: string; caFile: string };

beforeAll(async () => {
  central = await startInProcessCentral();
  const caFile = join(central.dir, 'ca.pem');
  writeFileSync(caFile, central.ca);
  conn = { url: central.url, token: central.adminToken, caFile };
  expect((await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } })).status).toBe(201);
  sim = await central.joinAgent('dc1'); // secret params are sealed to the site's agents
  expect((await central.request('POST', '/api/v1/params', { body: { name: 'bmc_password', secret: true } })).status).toBe(201);
  expect((await central.request('POST', '/api/v1/machines', { body: { name: 'm1', site: 'dc1', macs: ['52:54:00:00:19:01'], params: { rack: 'r1' } } })).status).toBe(201);
}, 60_000);
afterAll(async () => {
  await central?.close();
});

describe('audit log', () => {
  it("records a PATCH's who, token, route, object and before/after, with the secret masked, in the same commit as the write", async () => {
    const operator = await central.token('operator');
    const r = await central.request('PATCH', '/api/v1/machines/m1', { token: operator, body: { params: { rack: 'r2', bmc_password: 'hunter2-secret' } } });
    expect(r.status).toBe(200);
    const page = await central.request('GET', '/api/v1/events?object=machine/m1&kind=api-write&since=1h');
    expect(page.status).toBe(200);
    const rec = page.json.items.at(-1);
    expect(rec).toMatchObject({ kind: 'api-write', method: 'PATCH', route: '/api/v1/machines/:ref', path: '/api/v1/machines/m1', objects: ['machine/m1'], actor: { role: 'operator' }, site: 'dc1' });
    expect(operator.startsWith(`ul_${rec.actor.tokenId}_`)).toBe(true); // the token's id …
    expect(page.text).not.toContain(operator.split('_').at(-1)); // … never its secret
    const change = rec.changes.find((c: { object: string }) => c.object === 'machine/m1');
    expect(change.op).toBe('update');
    expect(change.before.params).toEqual({ rack: 'r1' });
    expect(change.after.params).toEqual({ rack: 'r2', bmc_password: '[masked]' });
    // The secret is nowhere in the event stream (the API, the data dir's journal).
    expect(page.text).not.toContain('hunter2');
    const dataDir = join(central.dir, 'data');
    const journal = readdirSync(dataDir).filter((f) => f.startsWith('journal.')).map((f) => readFileSync(join(dataDir, f), 'utf8')).join('');
    expect(journal).not.toContain('hunter2');
    // One journal record (one durable commit) holds both the machine and its audit record: after kill -9
    // there is either both or neither.
    const line = journal.split('\n').find((l) => l.includes(rec.id));
    expect(line).toBeDefined();
    const ops = JSON.parse(line!).ops as { type: string; collection: string }[];
    expect(ops.map((o) => o.collection).sort()).toEqual(['events', 'machines']);
  });

  it('records creates and deletes, not reads; a refused write leaves no record', async () => {
    const before = (await central.request('GET', '/api/v1/events?kind=api-write&limit=1000')).json.total;
    expect((await central.request('POST', '/api/v1/machines', { body: { name: 'm2', site: 'dc1', macs: ['52:54:00:00:19:02'] } })).status).toBe(201);
    expect((await central.request('POST', '/api/v1/machines', { body: { name: 'm2', site: 'dc1', macs: ['52:54:00:00:19:03'] } })).status).toBe(409);
    await central.request('GET', '/api/v1/machines/m2');
    expect((await central.request('DELETE', '/api/v1/machines/m2')).status).toBe(204);
    const page = (await central.request('GET', '/api/v1/events?object=machine/m2')).json;
    expect(page.items.map((e: { changes: { op: string }[] }) => e.changes[0]!.op)).toEqual(['create', 'delete']);
    expect(page.items[1].changes[0].before.name).toBe('m2');
    expect((await central.request('GET', '/api/v1/events?kind=api-write&limit=1000')).json.total).toBe(before + 2);
  });

  it('a param made secret masks the plaintext values it seals in the same write', async () => {
    expect((await central.request('POST', '/api/v1/params', { body: { name: 'root_pw' } })).status).toBe(201);
    expect((await central.request('PATCH', '/api/v1/machines/m1', { body: { params: { root_pw: 'plain-root-pw' } } })).status).toBe(200);
    expect((await central.request('PATCH', '/api/v1/params/root_pw', { body: { secret: true } })).status).toBe(200);
    const rec = (await central.request('GET', '/api/v1/events?object=param/root_pw')).json.items.at(-1);
    const m1 = rec.changes.find((c: { object: string }) => c.object === 'machine/m1');
    expect(m1.before.params.root_pw).toBe('[masked]');
    expect(m1.after.params.root_pw).toBe('[masked]');
  });

  it('records task writes by reference: who created and cancelled which task, no copy of its payload or envelope', async () => {
    const script = Buffer.from('echo audit-by-reference').toString('base64');
    const created = await central.request('POST', '/api/v1/tasks', { body: { site: 'dc1', machine: 'm1', kind: 'run-script', payload: { scriptB64: script } } });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    expect((await central.request('POST', `/api/v1/tasks/${id}/cancel`)).status).toBe(200);
    const page = await central.request('GET', `/api/v1/events?object=task/${id}&kind=api-write`);
    expect(page.json.items).toHaveLength(2);
    const [create, cancel] = page.json.items as { method: string; path: string; site: string; changes: { op: string; summary: Record<string, unknown>; fields?: string[] }[] }[];
    expect(create).toMatchObject({ method: 'POST', path: '/api/v1/tasks', site: 'dc1', objects: expect.arrayContaining([`task/${id}`, expect.stringMatching(/^agent\//)]) });
    expect(create!.changes).toContainEqual(expect.objectContaining({ object: `task/${id}`, op: 'create', summary: expect.objectContaining({ kind: 'run-script', state: 'queued', site: 'dc1' }) }));
    // Its agent's sequence number, by reference too: which field, no copy of the agent.
    expect(create!.changes).toContainEqual(expect.objectContaining({ collection: 'agents', id: sim.id, op: 'update', fields: ['nextSeq'] }));
    expect(cancel).toMatchObject({ path: `/api/v1/tasks/${id}/cancel`, changes: [{ op: 'update', summary: { state: 'cancelled' } }] });
    expect(cancel!.changes[0]!.fields).toEqual(expect.arrayContaining(['state', 'history']));
    expect(JSON.stringify(page.json)).not.toMatch(/"(before|after)"/);
    expect(page.text).not.toContain(script);
    // The journal holds the payload once (the task), not in its audit record.
    const dataDir = join(central.dir, 'data');
    const journal = readdirSync(dataDir).filter((f) => f.startsWith('journal.')).map((f) => readFileSync(join(dataDir, f), 'utf8')).join('');
    const line = journal.split('\n').find((l) => l.includes(id) && l.includes('"events"') && l.includes('"op":"create"'))!;
    expect(line.split(script)).toHaveLength(2);
  });

  it('a site-scoped token sees only its site; a bad query is a clear 400', async () => {
    expect((await central.request('POST', '/api/v1/sites', { body: { name: 'dc2' } })).status).toBe(201);
    const scoped = await central.token('viewer', 'dc2');
    const items = (await central.request('GET', '/api/v1/events?limit=1000', { token: scoped })).json.items as { site?: string }[];
    expect(items.every((e) => e.site === 'dc2')).toBe(true);
    expect(items.some((e) => e.site === undefined)).toBe(false);
    const bad = await central.request('GET', '/api/v1/events?since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/since/);
    expect((await central.request('GET', '/api/v1/events?object=nonsense')).status).toBe(400);
  });
});

describe('agent events in the same stream', () => {
  it('a watch (long poll) returns an agent event as it arrives', async () => {
    const now = (await central.request('GET', '/api/v1/events?limit=0')).json.next as string;
    const watch = central.request('GET', `/api/v1/events?after=${encodeURIComponent(now)}&wait=20s`);
    await new Promise((r) => setTimeout(r, 300));
    await sim.event('boot-claim-refused', { machineId: 'x', mac: '52:54:00:00:19:01', remote: '198.18.0.66', holderRemote: '198.18.0.10', via: 'explicit' });
    const r = await watch;
    expect(r.status).toBe(200);
    expect(r.json.items).toHaveLength(1);
    expect(r.json.items[0]).toMatchObject({ kind: 'boot-claim-refused', agent: sim.id, site: 'dc1', data: { remote: '198.18.0.66' } });
    // The event is about m1 by its MAC: `--object machine/m1` finds it beside the audit records.
    const about = (await central.request('GET', '/api/v1/events?object=machine/m1')).json.items.map((e: { kind: string }) => e.kind);
    expect(about).toContain('boot-claim-refused');
    expect(about).toContain('api-write');
  });

  it('`underlay events watch` streams an agent event; `events list --object --since` prints the audit log', async () => {
    const watching = runCliProgram(conn, ['events', 'watch', '--kind', 'task-rejected', '--count', '1']);
    await new Promise((r) => setTimeout(r, 500));
    await sim.event('task-rejected', { reason: 'bad-signature', detail: 'signature does not verify', taskId: 't-19' });
    const out = await watching;
    expect(out.code).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ kind: 'task-rejected', agent: sim.id, data: { reason: 'bad-signature', taskId: 't-19' } });

    const list = await runCliProgram(conn, ['-o', 'json', 'events', 'list', '--object', 'machine/m1', '--since', '1h']);
    expect(list.code).toBe(0);
    const items = JSON.parse(list.stdout) as { kind: string; method?: string }[];
    expect(items.some((e) => e.kind === 'api-write' && e.method === 'PATCH')).toBe(true);
    const table = await runCliProgram(conn, ['-o', 'table', 'events', 'list', '--kind', 'api-write', '--limit', '2']);
    expect(table.stdout).toMatch(/showing 2 of \d+/);
  }, 30_000);
});
