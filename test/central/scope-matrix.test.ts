import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessCentral, type InProcessCentral, type SimAgent } from './in-process.js';

/**
 * The scoped-token matrix (issue 11, item 3): walks EVERY operation of the served OpenAPI document with
 * a site-scoped admin, operator and viewer of dc2, against the objects of the other site (dc1) and of
 * their own, and checks the rules of central/auth/scope.ts:
 *   other site's object by id/name → 404 for every method; a write naming the other site → 403;
 *   lists show nothing of the other site; global objects are readable, their writes → 403;
 *   the own site works as for an unscoped token (sites are created and deleted only unscoped).
 * Every route must be classified in CLASS below, so a route added later without a decision fails here.
 */
type Side = 'other' | 'own';
type Caller = 'admin' | 'operator' | 'viewer';
type Class = 'site' | 'global' | 'join' | 'unscoped';

const CLASS: Record<string, Class> = {
  '/api/v1/sites': 'site',
  '/api/v1/sites/{ref}': 'site',
  '/api/v1/machines': 'site',
  '/api/v1/machines/{ref}': 'site',
  '/api/v1/machines/{ref}/params': 'site',
  '/api/v1/machines/{ref}/rearm': 'site',
  '/api/v1/machines/{ref}/deploy': 'site',
  '/api/v1/machines/{ref}/release': 'site',
  '/api/v1/machines/{ref}/rescue': 'site',
  '/api/v1/machines/{ref}/wait': 'site',
  '/api/v1/machines/{ref}/events': 'site',
  '/api/v1/tokens': 'site',
  '/api/v1/tokens/{id}': 'site',
  '/api/v1/subnets': 'site',
  '/api/v1/subnets/{ref}': 'site',
  '/api/v1/reservations': 'site',
  '/api/v1/reservations/{ref}': 'site',
  '/api/v1/leases': 'site',
  '/api/v1/agents': 'site',
  '/api/v1/agents/{ref}': 'site',
  '/api/v1/agents/{ref}/revoke': 'site',
  '/api/v1/agents/join': 'join',
  '/api/v1/tasks': 'site',
  '/api/v1/tasks/batch': 'site',
  '/api/v1/tasks/{id}': 'site',
  '/api/v1/tasks/{id}/cancel': 'site',
  '/api/v1/inventory': 'site',
  '/api/v1/inventory/hosts/{name}': 'site',
  '/api/v1/services/{name}/members': 'site',
  '/api/v1/services/{name}/members/{id}': 'site',
  '/api/v1/services/{name}/members/{id}/pass': 'site',
  '/api/v1/services/{name}/members/{id}/warn': 'site',
  '/api/v1/services/{name}/members/{id}/fail': 'site',
  '/api/v1/services': 'global',
  '/api/v1/services/{name}': 'global',
  '/api/v1/services/{name}/wait': 'global',
  '/api/v1/profiles': 'global',
  '/api/v1/profiles/{ref}': 'global',
  '/api/v1/params': 'global',
  '/api/v1/params/{ref}': 'global',
  '/api/v1/bootenvs': 'global',
  '/api/v1/bootenvs/{ref}': 'global',
  '/api/v1/templates': 'global',
  '/api/v1/templates/{ref}': 'global',
  '/api/v1/group-rules': 'global',
  '/api/v1/group-rules/{ref}': 'global',
  '/api/v1/artifacts': 'global',
  '/api/v1/artifacts/{sha256}': 'global',
  '/api/v1/images': 'global',
  '/api/v1/images/{name}': 'global',
  '/api/v1/admin-token/rotate': 'global',
  '/api/v1/workflows': 'global',
  '/api/v1/workflows/{ref}': 'global',
  '/api/v1/runs': 'site',
  '/api/v1/runs/{id}': 'site',
  '/api/v1/runs/{id}/continue': 'site',
  '/api/v1/runs/{id}/cancel': 'site',
  '/api/v1/runs/{id}/retry': 'site',
  '/api/v1/machines/{ref}/workflow': 'site',
  '/api/v1/machines/{ref}/power': 'site',
  '/api/v1/machines/{ref}/boot-device': 'site',
  '/api/v1/pki/cas': 'global',
  '/api/v1/pki/cas/{name}': 'global',
  '/api/v1/pki/cas/{name}/crl': 'global',
  // A certificate belongs to its machine's site: a scoped token sees and revokes only its own.
  '/api/v1/pki/certs': 'site',
  '/api/v1/pki/certs/{serial}': 'site',
  '/api/v1/pki/certs/{serial}/revoke': 'site',
  // The console's routes: the caller's own token, and the change stream (only the caller's site's changes).
  '/api/v1/whoami': 'site',
  '/api/v1/changes/stream': 'site',
  '/api/v1/machines/{ref}/boot-files': 'site',
  // The event stream (audit log and agent events): a scoped token sees its own site's records only.
  '/api/v1/events': 'site',
  // The whole store at once: unscoped admin tokens only.
  '/api/v1/backup': 'unscoped',

};
/** Own-site writes a scoped token still may not do. */
const OWN_FORBIDDEN = new Set(['POST /api/v1/sites', 'DELETE /api/v1/sites/{ref}']);
const NEEDS_ADMIN = [/^GET \/api\/v1\/backup$/, /^[A-Z]+ \/api\/v1\/tokens/, /^POST \/api\/v1\/agents\/\{ref\}\/revoke$/, /^POST \/api\/v1\/admin-token\/rotate$/];

let central: InProcessCentral;
const tokens = {} as Record<Caller, string>;
const ids = { one: {} as Record<string, string>, two: {} as Record<string, string> };
const agents = {} as Record<'one' | 'two', SimAgent>;

async function ok(r: Promise<{ status: number; json: any; text: string }>, want = 201) { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await r;
  if (res.status !== want) throw new Error(`setup: want ${want}, got ${res.status} ${res.text}`);
  return res.json;
}

beforeAll(async () => {
  central = await startInProcessCentral();
  const post = (path: string, body: unknown) => ok(central.request('POST', path, { body }));
  for (const [side, site, n] of [['one', 'dc1', 1], ['two', 'dc2', 2]] as const) {
    await post('/api/v1/sites', { name: site, params: { marker: `${side}-site-param` } });
    agents[side] = await central.joinAgent(site, `${side}-agent`);
    const m = await post('/api/v1/machines', { name: `${side}-m`, site, macs: [`52:54:00:0${n}:00:01`], params: { marker: `${side}-machine-param` } });
    const subnet = await post('/api/v1/subnets', { site, cidr: `198.18.${n}.0/24`, range: { start: `198.18.${n}.10`, end: `198.18.${n}.200` } });
    const res = await post('/api/v1/reservations', { site, mac: `52:54:00:0${n}:00:01`, address: `198.18.${n}.50` });
    const task = await post('/api/v1/tasks', { site, kind: 'ping' });
    const tok = await post('/api/v1/tokens', { role: 'viewer', site, name: `${side}-token` });
    const member = await post('/api/v1/services/web/members', { id: `${side}-member`, machine: `${side}-m`, address: `198.18.${n}.50`, port: 80 });
    await agents[side].event('lease', { type: 'lease', mac: `52:54:00:0${n}:00:01`, address: `198.18.${n}.50`, subnet: `198.18.${n}.0/24`, expiresAt: new Date(Date.now() + 3600_000).toISOString() });
    Object.assign(ids[side], { site, machine: m.id, machineName: m.name, subnet: subnet.id, reservation: res.id, task: task.id, token: tok.id, agent: agents[side].id, member: member.id, mac: `52:54:00:0${n}:00:01` });
  }
  await post('/api/v1/workflows', { name: 'g-wf', stages: [{ name: 'hold', approval: true, steps: [] }] });
  for (const side of ['one', 'two'] as const) ids[side].run = (await post('/api/v1/runs', { workflow: 'g-wf', machines: [ids[side].machineName] })).items[0].id;
  // A service CA, and one issued certificate per site (as the CSR path records them) for the pki routes.
  await post('/api/v1/pki/cas', { name: 'g-ca' });
  for (const [side, serial] of [['one', '0b'], ['two', '0a']] as const) {
    const o = ids[side];
    const at = new Date().toISOString();
    await central.running.deps.store.put('issued-certs', { id: `cert-${side}`, serial, ca: 'g-ca', machine: o.machine, machineName: o.machineName, site: o.site, commonName: o.machineName, sans: [], notBefore: at, notAfter: at, certificate: '', status: 'valid', createdAt: at, updatedAt: at });
    o.cert = serial;
  }
  await post('/api/v1/profiles', { name: 'g-prof' });
  await post('/api/v1/params', { name: 'g_param' });
  await post('/api/v1/templates', { name: 'g-tpl', text: 'hello' });
  tokens.admin = await central.token('admin', 'dc2');
  tokens.operator = await central.token('operator', 'dc2');
  tokens.viewer = await central.token('viewer', 'dc2');
}, 120_000);
afterAll(async () => {
  await central?.close();
});

function urlFor(path: string, side: Side): string {
  const o = side === 'other' ? ids.one : ids.two;
  const values: Record<string, string> = {
    '/api/v1/sites/{ref}': o.site,
    '/api/v1/machines/{ref}': o.machineName,
    '/api/v1/machines/{ref}/params': o.machineName,
    '/api/v1/machines/{ref}/deploy': o.machineName,
    '/api/v1/machines/{ref}/release': o.machineName,
    '/api/v1/machines/{ref}/rescue': o.machineName,
    '/api/v1/machines/{ref}/wait': o.machineName,
    '/api/v1/machines/{ref}/events': o.machineName,
    '/api/v1/machines/{ref}/boot-files': o.machineName,
    '/api/v1/tokens/{id}': o.token,
    '/api/v1/subnets/{ref}': o.subnet,
    '/api/v1/reservations/{ref}': o.reservation,
    '/api/v1/agents/{ref}': o.agent,
    '/api/v1/agents/{ref}/revoke': o.agent,
    '/api/v1/tasks/{id}': o.task,
    '/api/v1/tasks/{id}/cancel': o.task,
    '/api/v1/inventory/hosts/{name}': o.machineName,
    '/api/v1/profiles/{ref}': 'g-prof',
    '/api/v1/params/{ref}': 'g_param',
    '/api/v1/templates/{ref}': 'g-tpl',
    '/api/v1/artifacts/{sha256}': '0'.repeat(64),
    '/api/v1/machines/{ref}/workflow': o.machineName,
    '/api/v1/machines/{ref}/power': o.machineName,
    '/api/v1/machines/{ref}/boot-device': o.machineName,
    '/api/v1/pki/certs/{serial}': o.cert,
    '/api/v1/pki/certs/{serial}/revoke': o.cert,
    '/api/v1/workflows/{ref}': 'g-wf',
    '/api/v1/runs/{id}': o.run,
    '/api/v1/runs/{id}/continue': o.run,
    '/api/v1/runs/{id}/cancel': o.run,
    '/api/v1/runs/{id}/retry': o.run,
  };
  let url = path;
  if (path.startsWith('/api/v1/services/{name}')) url = url.replace('{name}', 'web').replace('{id}', o.member);
  url = url.replace(/\{[^}]+\}/, encodeURIComponent(values[path] ?? 'no-such-object'));
  if (path === '/api/v1/machines/{ref}/wait') url += '?state=discovered&timeout=1s';
  else if (path.endsWith('/wait')) url += '?passing=1&timeout=1s';
  else if (path === '/api/v1/changes/stream') url += '?timeout=1s';
  return url;
}

function bodyFor(method: string, path: string, side: Side): unknown {
  const o = side === 'other' ? ids.one : ids.two;
  const n = side === 'other' ? 1 : 2;
  if (method === 'GET' || method === 'DELETE') return undefined;
  if (method === 'PUT' && path.startsWith('/api/v1/artifacts')) return '';
  const key = `${method} ${path}`;
  const bodies: Record<string, unknown> = {
    'POST /api/v1/sites': { name: 'new-site' },
    'POST /api/v1/machines': { name: `${side}-new`, site: o.site, macs: [`52:54:00:0${n}:09:09`] },
    'POST /api/v1/subnets': { site: o.site, cidr: `198.18.${n + 100}.0/24`, range: { start: `198.18.${n + 100}.10`, end: `198.18.${n + 100}.20` } },
    'POST /api/v1/reservations': { site: o.site, mac: `52:54:00:0${n}:09:08`, address: `198.18.${n}.60` },
    'POST /api/v1/tasks': { site: o.site, kind: 'ping' },
    'POST /api/v1/tasks/batch': { tasks: [{ site: o.site, kind: 'ping' }] },
    'POST /api/v1/tokens': { role: 'viewer', site: o.site },
    'POST /api/v1/services/{name}/members': { id: `${side}-new-member`, machine: o.machineName, address: `198.18.${n}.51`, port: 81 },
    'POST /api/v1/machines/{ref}/deploy': { image: 'debian-12' },
    'POST /api/v1/machines/{ref}/release': { wipe: 'quick' },
    'POST /api/v1/runs': { workflow: 'g-wf', machines: [o.machineName] },
    'POST /api/v1/machines/{ref}/workflow': { workflow: 'g-wf' },
    'POST /api/v1/machines/{ref}/power': { action: 'status' },
    'POST /api/v1/machines/{ref}/boot-device': { device: 'pxe' },
    'POST /api/v1/pki/cas': { name: 'new-ca' },
    'POST /api/v1/workflows': { name: 'new-wf', stages: [{ name: 's', steps: [] }] },
  };
  return key in bodies ? bodies[key] : {};
}

/** Everything of dc1 a dc2 token must never see in a list. */
const otherMarkers = () => [ids.one.cert && `cert-one`, ids.one.run, ids.one.machine, ids.one.machineName, ids.one.mac, ids.one.subnet, ids.one.reservation, ids.one.task, ids.one.token, ids.one.agent, ids.one.member, 'one-site-param', 'one-machine-param'];

async function ops() {
  const doc = (await central.request('GET', '/api/v1/openapi.json', { token: null })).json;
  const out: { method: string; path: string }[] = [];
  for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
    for (const method of Object.keys(item)) if (['get', 'post', 'put', 'patch', 'delete'].includes(method)) out.push({ method: method.toUpperCase(), path });
  }
  return out;
}

async function snapshotOfOther() {
  const get = async (p: string) => (await central.request('GET', p)).json;
  const one = ids.one;
  return {
    site: await get(`/api/v1/sites/${one.site}`),
    machine: await get(`/api/v1/machines/${one.machine}`),
    subnet: await get(`/api/v1/subnets/${one.subnet}`),
    reservation: await get(`/api/v1/reservations/${one.reservation}`),
    // Delivery to dc1's agent may move the task to `delivered` meanwhile; a cancel by dc2 must not happen.
    taskCancelled: (await get(`/api/v1/tasks/${one.task}`)).state === 'cancelled',
    agentRevoked: (await get(`/api/v1/agents/${one.agent}`)).revokedAt ?? null,
    token: (({ revokedAt }) => ({ revokedAt }))(await get(`/api/v1/tokens/${one.token}`)),
    members: (await get('/api/v1/services/web')).members.filter((m: { id: string }) => m.id.startsWith('one')),
    machines: (await get('/api/v1/machines?site=dc1')).total,
    sites: (await get('/api/v1/sites')).total,
    tokens: (await get('/api/v1/tokens?site=dc1')).total,
    tasks: (await get('/api/v1/tasks?site=dc1')).total,
    cert: (await get(`/api/v1/pki/certs/${one.cert}`)).status,
  };
}

describe('scoped-token matrix over every documented route', () => {
  it('classifies every route (a new route must decide its scope here)', async () => {
    const unclassified = (await ops()).map((o) => o.path).filter((p) => !(p in CLASS));
    expect(unclassified).toEqual([]);
  });

  it('a dc2 token never sees or changes dc1: 404 for its objects, 403 for writes naming it, lists without it', async () => {
    const before = await snapshotOfOther();
    const failures: string[] = [];
    let checked = 0;
    for (const op of await ops()) {
      const cls = CLASS[op.path];
      if (cls === 'join') continue;
      const key = `${op.method} ${op.path}`;
      const need = NEEDS_ADMIN.some((r) => r.test(key)) ? 'admin' : op.method === 'GET' ? 'read' : 'write';
      for (const caller of ['admin', 'operator', 'viewer'] as Caller[]) {
        const r = await central.request(op.method, urlFor(op.path, 'other'), { token: tokens[caller], body: bodyFor(op.method, op.path, 'other'), timeoutMs: 30_000 });
        const roleOk = caller === 'admin' || (caller === 'operator' && need !== 'admin') || (caller === 'viewer' && need === 'read');
        const hasRef = /\{[^}]+\}/.test(op.path) && !(op.path === '/api/v1/services/{name}/members' && op.method === 'POST');
        let want: string;
        let good: boolean;
        if (!roleOk) [want, good] = ['403 (role)', r.status === 403];
        else if (cls === 'unscoped') [want, good] = ['403 (unscoped only)', r.status === 403];
        else if (op.method === 'GET' && cls === 'global') [want, good] = ['readable', r.status !== 401 && r.status !== 403 && r.status < 500];
        else if (op.method === 'GET' && !hasRef) {
          const leaked = otherMarkers().filter((m) => r.text.includes(m));
          [want, good] = [`200 without dc1 objects (leaked: ${leaked.join(', ')})`, r.status === 200 && leaked.length === 0];
        } else if (cls === 'global' || OWN_FORBIDDEN.has(key)) [want, good] = ['403 (global write, or sites: unscoped only)', r.status === 403];
        else if (hasRef) [want, good] = ['404 (other site hidden)', r.status === 404];
        else [want, good] = ['403 (write naming the other site)', r.status === 403 && r.json?.error?.code === 'forbidden'];
        checked++;
        if (!good) failures.push(`${key} as ${caller}@dc2 against dc1: want ${want}, got ${r.status} ${r.text.slice(0, 160)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(100);
    expect(await snapshotOfOther()).toEqual(before);
  });

  it('list filters cannot widen the scope, and moving an own object to another site is refused', async () => {
    for (const p of ['/api/v1/machines?site=dc1', '/api/v1/tasks?site=dc1', '/api/v1/agents?site=dc1', '/api/v1/leases?site=dc1', '/api/v1/subnets?site=dc1', '/api/v1/tokens?site=dc1']) {
      const r = await central.request('GET', p, { token: tokens.admin });
      expect(r.status, p).toBe(200);
      expect(r.json.total, p).toBe(0);
    }
    const inv = await central.request('GET', '/api/v1/inventory?site=dc1', { token: tokens.viewer });
    expect(inv.status).toBe(200);
    expect(inv.text).not.toContain('one-m');
    const move = await central.request('PATCH', `/api/v1/machines/${ids.two.machine}`, { token: tokens.operator, body: { site: 'dc1' } });
    expect(move.status).toBe(403);
    expect((await central.request('GET', `/api/v1/machines/${ids.two.machine}`)).json.site).toBe('dc2');
    const unscoped = await central.request('POST', '/api/v1/tokens', { token: tokens.admin, body: { role: 'admin' } });
    expect(unscoped.status).toBe(403);
    const mixedBatch = await central.request('POST', '/api/v1/tasks/batch', { token: tokens.operator, body: { tasks: [{ site: 'dc2', kind: 'ping' }, { site: 'dc1', kind: 'ping' }] } });
    expect(mixedBatch.status).toBe(403);
    // Cluster-linking waits count and list only the caller's members; fleet-wide metrics need an unscoped token.
    expect((await central.request('PUT', `/api/v1/services/web/members/${ids.one.member}/pass`)).status).toBe(200);
    const all = await central.request('GET', '/api/v1/services/web/wait?passing=1&timeout=1s');
    expect(all.status).toBe(200);
    expect(all.text).toContain(ids.one.member);
    const scoped = await central.request('GET', '/api/v1/services/web/wait?passing=1&timeout=1s', { token: tokens.viewer });
    expect(scoped.status).toBe(408);
    expect(scoped.json.error.details.passing).toBe(0);
    expect(scoped.text).not.toContain(ids.one.member);
    expect((await central.request('GET', '/metrics', { token: tokens.viewer })).status).toBe(403);
    expect((await central.request('GET', '/metrics')).status).toBe(200);
  });

  it('a dc2 token works on its own site (reads 200; writes allowed except creating and deleting sites)', async () => {
    const all = await ops();
    // Reads first, then writes, deletes last (an own delete must not hide an object a later read needs).
    const order = (m: string) => (m === 'GET' ? 0 : m === 'DELETE' ? 2 : 1);
    all.sort((a, b) => order(a.method) - order(b.method));
    const failures: string[] = [];
    for (const op of all) {
      const cls = CLASS[op.path];
      if (cls === 'join') continue;
      const key = `${op.method} ${op.path}`;
      const caller: Caller = NEEDS_ADMIN.some((r) => r.test(key)) ? 'admin' : op.method === 'GET' ? 'viewer' : 'operator';
      const r = await central.request(op.method, urlFor(op.path, 'own'), { token: tokens[caller], body: bodyFor(op.method, op.path, 'own'), timeoutMs: 30_000 });
      let want: string;
      let good: boolean;
      if (cls === 'unscoped') [want, good] = ['403 (unscoped only)', r.status === 403];
      else if (op.method === 'GET') [want, good] = cls === 'global' ? ['readable', r.status !== 401 && r.status !== 403 && r.status < 500] : ['200', r.status === 200];
      else if (cls === 'global' || OWN_FORBIDDEN.has(key)) [want, good] = ['403', r.status === 403];
      else [want, good] = ['allowed', r.status !== 401 && r.status !== 403 && r.status < 500];
      if (!good) failures.push(`${key} as ${caller}@dc2 on dc2: want ${want}, got ${r.status} ${r.text.slice(0, 160)}`);
    }
    expect(failures).toEqual([]);
  });
});
