import { Agent } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCentrals, spawnCentral, type CentralProcess } from './support.js';

/**
 * Walks EVERY operation of the served OpenAPI document (so routes added later are covered without
 * touching this file) with every role and with no token, over real HTTPS, and checks the answer against
 * the permission model of central/auth/permissions.ts, restated here as the spec:
 *   GET needs read; POST/PATCH/PUT/DELETE need write; /api/v1/tokens* needs admin;
 *   a route that needs something else declares it in its documented security
 *   (`security: [{ bearer: ['join'] }]`; `security: []` = public) or in EXCEPTIONS below.
 */
type Need = 'read' | 'write' | 'admin' | 'join' | 'public';
type Caller = 'admin' | 'operator' | 'viewer' | 'agent-join' | 'none' | 'garbage';

const GRANTS: Record<Exclude<Caller, 'none' | 'garbage'>, Need[]> = {
  admin: ['read', 'write', 'admin'],
  operator: ['read', 'write'],
  viewer: ['read'],
  'agent-join': ['join'],
};

/** Routes whose need differs from the method rule and that do not document it. "METHOD /path" → need. */
const EXCEPTIONS: { match: RegExp; need: Need }[] = [
  { match: /^[A-Z]+ \/api\/v1\/tokens(\/|$)/, need: 'admin' },
  { match: /^POST \/api\/v1\/agents\/join$/, need: 'join' },
  { match: /^POST \/api\/v1\/agents\/\{[^}]+\}\/revoke$/, need: 'admin' },
];

interface Param {
  name: string;
  in: string;
  required?: boolean;
  schema?: { type?: string; enum?: unknown[]; minimum?: number };
}

/**
 * Query string for one operation: blocking queries and waits get the shortest timeout, required
 * parameters a valid-looking value, so every request answers promptly.
 */
function queryFor(params: Param[] = []): string {
  const q = new URLSearchParams();
  for (const p of params.filter((x) => x.in === 'query')) {
    if (/^(timeout|wait)$/i.test(p.name)) q.set(p.name, '1s');
    else if (p.required) {
      const t = p.schema?.type;
      q.set(p.name, p.schema?.enum ? String(p.schema.enum[0]) : t === 'integer' || t === 'number' ? String(Math.max(1, p.schema?.minimum ?? 1)) : t === 'boolean' ? 'true' : 'x');
    }
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Routes outside the OpenAPI document. */
const UNDOCUMENTED: { method: string; path: string; need: Need }[] = [
  { method: 'GET', path: '/metrics', need: 'read' },
  { method: 'GET', path: '/healthz', need: 'public' },
  { method: 'GET', path: '/api/v1/openapi.json', need: 'public' },
];

const KNOWN: Need[] = ['read', 'write', 'admin', 'join'];

function needOf(method: string, path: string, op: { security?: Record<string, string[]>[] }): Need {
  if (Array.isArray(op.security)) {
    if (op.security.length === 0 || op.security.some((s) => Object.keys(s).length === 0)) return 'public';
    const scopes = op.security.flatMap((s) => Object.values(s).flat()).filter((x): x is Need => KNOWN.includes(x as Need));
    if (scopes.length > 0) return scopes[0];
  }
  const key = `${method.toUpperCase()} ${path}`;
  const ex = EXCEPTIONS.find((e) => e.match.test(key));
  if (ex) return ex.need;
  return method.toUpperCase() === 'GET' || method.toUpperCase() === 'HEAD' ? 'read' : 'write';
}

let central: CentralProcess;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });
const tokens: Partial<Record<Caller, string>> = {};

beforeAll(async () => {
  central = await spawnCentral();
  tokens.admin = central.token;
  expect((await central.request('POST', '/api/v1/sites', { body: { name: 'matrix-site' } })).status).toBe(201);
  for (const role of ['operator', 'viewer', 'agent-join'] as const) {
    const r = await central.request('POST', '/api/v1/tokens', { body: { role, name: `matrix ${role}`, ...(role === 'agent-join' ? { site: 'matrix-site' } : {}) } });
    expect(r.status).toBe(201);
    // A join token is `ulj1.<bearer>.<ca sha256>`: the bearer part is what authenticates.
    tokens[role] = role === 'agent-join' ? /^ulj1\.(ul_[^.]+)\.[0-9a-f]{64}$/.exec(r.json.token)![1] : r.json.token;
  }
  tokens.garbage = 'ul_0000000000000000_' + 'A'.repeat(43);
});
afterAll(async () => {
  agent.destroy();
  await central?.cleanup();
  await killAllCentrals();
});

describe('role matrix over every documented route', () => {
  it('answers 401 without a valid token, 403 when the role lacks the permission, and neither when allowed', async () => {
    const doc = (await central.request('GET', '/api/v1/openapi.json', { token: null })).json;
    const ops: { method: string; path: string; url: string; need: Need }[] = [];
    for (const [path, item] of Object.entries<Record<string, { security?: Record<string, string[]>[]; parameters?: Param[] }>>(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
        // Path parameters get a value no object has: an allowed caller then meets 404/400, never a change.
        const url = path.replace(/\{[^}]+\}/g, 'matrix-no-such-object') + queryFor(op.parameters);
        ops.push({ method: method.toUpperCase(), path, url, need: needOf(method, path, { security: op.security ?? doc.security }) });
      }
    }
    for (const u of UNDOCUMENTED) ops.push({ ...u, url: u.path });
    // Sanity: the walk really covers the inventory and token routes (the document is not empty or partial).
    expect(ops.length).toBeGreaterThanOrEqual(24 + UNDOCUMENTED.length);
    for (const p of ['/api/v1/sites', '/api/v1/machines/{ref}', '/api/v1/tokens/{id}']) expect(ops.map((o) => o.path)).toContain(p);

    const failures: string[] = [];
    const seen = { allowed: 0, forbidden: 0, unauthenticated: 0 };
    for (const op of ops) {
      for (const caller of ['none', 'garbage', 'admin', 'operator', 'viewer', 'agent-join'] as Caller[]) {
        const token = caller === 'none' ? null : tokens[caller]!;
        const body = op.method === 'GET' || op.method === 'DELETE' ? undefined : {};
        const r = await central.request(op.method, op.url, { token, body, agent, timeoutMs: 60_000 });
        let want: string;
        let ok: boolean;
        if (op.need === 'public') {
          want = 'not 401/403';
          ok = r.status !== 401 && r.status !== 403;
        } else if (caller === 'none' || caller === 'garbage') {
          want = '401';
          ok = r.status === 401;
          if (ok && !String(r.headers['www-authenticate'] ?? '').startsWith('Bearer')) {
            ok = false;
            want = '401 with WWW-Authenticate: Bearer';
          }
          if (ok) seen.unauthenticated++;
        } else if (GRANTS[caller].includes(op.need)) {
          want = 'not 401/403';
          ok = r.status !== 401 && r.status !== 403 && r.status < 500;
          if (ok) seen.allowed++;
        } else {
          want = '403';
          ok = r.status === 403 && r.json?.error?.code === 'forbidden';
          if (ok) seen.forbidden++;
        }
        if (!ok) failures.push(`${op.method} ${op.path} as ${caller} (needs ${op.need}): want ${want}, got ${r.status} ${r.text.slice(0, 120)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(seen.allowed).toBeGreaterThan(0);
    expect(seen.forbidden).toBeGreaterThan(0);
    expect(seen.unauthenticated).toBeGreaterThan(0);
  });

  it('left no trace: no object was created, changed or deleted by the walk', async () => {
    const sites = await central.request('GET', '/api/v1/sites');
    expect(sites.json.items.map((s: { name: string }) => s.name)).toEqual(['matrix-site']);
    for (const c of ['machines', 'profiles', 'params']) expect((await central.request('GET', `/api/v1/${c}`)).json.total, c).toBe(0);
    const toks = await central.request('GET', '/api/v1/tokens');
    expect(toks.json.total).toBe(4);
    expect(toks.json.items.filter((t: { revokedAt?: string }) => t.revokedAt)).toEqual([]);
  });
});
