import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cleanEnv, killAllCentrals, runCli, spawnCentral, type CentralProcess } from '../central/support.js';

/** The service registry against a real central: TTL health, deregistration, blocking queries, watch, wait. */
let central: CentralProcess;
/** The first central (owner of the temp data dir) when a test restarts it. */
let first: CentralProcess | undefined;
let env: Record<string, string>;

beforeAll(async () => {
  central = await spawnCentral();
  env = { UNDERLAY_URL: central.url, UNDERLAY_TOKEN: central.token, UNDERLAY_CA: central.caPath };
  const site = await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } });
  expect(site.status).toBe(201);
  for (const [name, address] of [
    ['node-1', '198.18.0.1'],
    ['node-2', '198.18.0.2'],
  ]) {
    expect((await central.request('POST', '/api/v1/machines', { body: { name, site: 'dc1', address } })).status).toBe(201);
  }
});
afterAll(async () => {
  await central?.cleanup();
  await first?.cleanup();
  await killAllCentrals();
});

const cli = (...args: string[]) => runCli(['-o', 'json', ...args], { env });
async function ok(args: string[]): Promise<any> {
  const r = await cli(...args);
  expect(r.code, `underlay ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
}

/** A long-running CLI process whose stdout lines we can await one by one. */
function startCli(args: string[]) {
  const p = spawn(process.execPath, [CLI, '-o', 'json', ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let stderr = '';
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  p.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      waiters.splice(0).forEach((w) => w());
    }
  });
  p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => p.once('close', (code) => resolve(code)));
  return {
    proc: p,
    lines,
    exited,
    get stderr() {
      return stderr;
    },
    /** Resolves with line n (0-based) once it has been printed. */
    async line(n: number): Promise<any> {
      while (lines.length <= n) {
        if (p.exitCode !== null) throw new Error(`exited (${p.exitCode}) before line ${n}: ${stderr}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          p.once('close', () => r());
        });
      }
      return JSON.parse(lines[n]!);
    },
    kill: () => {
      if (p.exitCode === null) p.kill('SIGTERM');
    },
  };
}

const status = (svc: any, id: string) => svc.members.find((m: { id: string }) => m.id === id)?.status;

describe('service registry', () => {
  it('registers members (address from the machine), lists and shows them', async () => {
    await ok(['services', 'create', 'web', '--tag', 'http']);
    const m = await ok(['services', 'register', 'web', '--machine', 'node-1', '--port', '80', '--tag', 'v1', '--meta', 'zone=a', '--status', 'passing']);
    expect(m).toMatchObject({ id: 'node-1-80', machine: 'node-1', address: '198.18.0.1', port: 80, tags: ['v1'], meta: { zone: 'a' }, status: 'passing' });
    const list = await ok(['services', 'list']);
    expect(list.items.map((s: { name: string }) => s.name)).toContain('web');
    const shown = await ok(['services', 'show', 'web']);
    expect(shown.tags).toEqual(['http']);
    expect(shown.members).toHaveLength(1);
    const bad = await cli('services', 'register', 'web', '--machine', 'nope', '--port', '80');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('machine "nope" does not exist');
    const dup = await cli('services', 'create', 'web');
    expect(dup.code).toBe(5);
  });

  it('pass / warn / fail change the status and note; the inventory follows', async () => {
    await ok(['services', 'register', 'api', '--machine', 'node-2', '--id', 'api-2', '--port', '9000', '--ttl', '10m']);
    expect(status(await ok(['services', 'show', 'api']), 'api-2')).toBe('critical'); // TTL members start critical
    let inv = (await central.request('GET', '/api/v1/inventory')).json;
    expect(inv.service_api.hosts).toEqual([]);
    expect(await ok(['services', 'pass', 'api', 'api-2', '--note', 'all good'])).toMatchObject({ status: 'passing', note: 'all good' });
    inv = (await central.request('GET', '/api/v1/inventory')).json;
    expect(inv.service_api.hosts).toEqual(['node-2']);
    expect(inv._meta.hostvars['node-2'].underlay_services.api).toEqual([{ id: 'api-2', address: '198.18.0.2', port: 9000, status: 'passing' }]);
    expect(await ok(['services', 'warn', 'api', 'api-2', '--note', 'disk 91%'])).toMatchObject({ status: 'warning', note: 'disk 91%' });
    expect(await ok(['services', 'fail', 'api', 'api-2'])).toMatchObject({ status: 'critical' });
    inv = (await central.request('GET', '/api/v1/inventory')).json;
    expect(inv.service_api.hosts).toEqual([]);
    expect(inv.all.vars.underlay_service_endpoints.api[0].status).toBe('critical');
    const gone = await cli('services', 'pass', 'api', 'no-such-member');
    expect(gone.code).toBe(4);
  });

  it('a member whose TTL lapses turns critical (seen by a watch), then is removed after deregister-after', async () => {
    await ok(['services', 'register', 'ttl', '--address', '198.18.0.9', '--port', '2', '--id', 'stays', '--status', 'passing']);
    const watch = startCli(['services', 'watch', 'ttl', '--wait', '30s']);
    try {
      const first = await watch.line(0);
      expect(first.members.map((m: { id: string }) => m.id)).toEqual(['stays']);
      await ok(['services', 'register', 'ttl', '--address', '198.18.0.9', '--port', '1', '--id', 'short', '--ttl', '1s', '--deregister-after', '2s', '--status', 'passing']);
      // Follow the watch: "short" appears, turns critical when its TTL lapses, then disappears. Each line is a
      // change with a larger index (how many lines the registration and expiry take depends on timing).
      const seen: string[] = [];
      let prev = first.modifyIndex;
      for (let n = 1; ; n++) {
        const svc = await watch.line(n);
        expect(svc.modifyIndex).toBeGreaterThan(prev);
        prev = svc.modifyIndex;
        const short = svc.members.find((m: { id: string }) => m.id === 'short');
        seen.push(short ? short.status : 'gone');
        if (short?.status === 'critical') expect(short.note).toContain('TTL expired');
        if (!short) break;
      }
      expect(seen).toContain('critical');
      expect(seen.at(-1)).toBe('gone');
      expect(seen.indexOf('critical')).toBeLessThan(seen.indexOf('gone'));
      expect(status(await ok(['services', 'show', 'ttl']), 'stays')).toBe('passing');
    } finally {
      watch.kill();
      await watch.exited;
    }
  });

  it('heartbeats keep a TTL member passing without writing (its index does not move)', async () => {
    await ok(['services', 'register', 'hb', '--address', '198.18.0.7', '--port', '7', '--id', 'm', '--ttl', '30s', '--status', 'passing']);
    const idx = (await ok(['services', 'show', 'hb'])).modifyIndex;
    for (let i = 0; i < 4; i++) {
      const r = await central.request('PUT', '/api/v1/services/hb/members/m/pass');
      expect(r.status).toBe(200);
      expect(r.json.lastHeartbeatAt).toBeDefined();
    }
    const after = await ok(['services', 'show', 'hb']);
    expect(after.modifyIndex).toBe(idx);
    expect(status(after, 'm')).toBe('passing');
  });

  it('a blocking query wakes on a change with the new index, and at the timeout with the same index', async () => {
    await ok(['services', 'register', 'bq', '--address', '198.18.0.5', '--port', '5', '--id', 'a', '--status', 'passing']);
    const now = await central.request('GET', '/api/v1/services/bq');
    const idx = Number(now.headers['x-underlay-index']);
    expect(idx).toBe(now.json.modifyIndex);

    const timedOut = await central.request('GET', `/api/v1/services/bq?index=${idx}&wait=1s`);
    expect(timedOut.status).toBe(200);
    expect(Number(timedOut.headers['x-underlay-index'])).toBe(idx);
    expect(timedOut.json.members).toHaveLength(1);

    const pending = central.request('GET', `/api/v1/services/bq?index=${idx}&wait=5m`);
    const changed = central.request('PUT', '/api/v1/services/bq/members/a/fail', { body: { note: 'down' } });
    const [woke, put] = await Promise.all([pending, changed]);
    expect(put.status).toBe(200);
    expect(woke.status).toBe(200);
    expect(Number(woke.headers['x-underlay-index'])).toBeGreaterThan(idx);
    expect(woke.json.members[0]).toMatchObject({ status: 'critical', note: 'down' });

    // The list blocks on the global index the same way.
    const listIdx = Number((await central.request('GET', '/api/v1/services')).headers['x-underlay-index']);
    const listWait = central.request('GET', `/api/v1/services?index=${listIdx}&wait=5m`);
    await central.request('PUT', '/api/v1/services/bq/members/a/pass');
    const listWoke = await listWait;
    expect(Number(listWoke.headers['x-underlay-index'])).toBeGreaterThan(listIdx);
    expect((await central.request('GET', '/api/v1/services/nope?index=1&wait=5m')).status).toBe(404);
    expect((await central.request('GET', '/api/v1/services/bq?wait=forever')).status).toBe(400);
  });

  it('services wait exits 0 once enough members pass, and 2 with a clear message at the timeout', async () => {
    const waiting = startCli(['services', 'wait', 'etcd', '--passing', '2', '--timeout', '10m']);
    try {
      await ok(['services', 'register', 'etcd', '--machine', 'node-1', '--port', '2379', '--ttl', '10m']);
      await ok(['services', 'register', 'etcd', '--machine', 'node-2', '--port', '2379', '--ttl', '10m']);
      await ok(['services', 'pass', 'etcd', 'node-1-2379']);
      await ok(['services', 'pass', 'etcd', 'node-2-2379']);
      expect(await waiting.exited).toBe(0);
      expect(JSON.parse(waiting.lines.join('\n'))).toMatchObject({ service: 'etcd', satisfied: true, passing: 2, wanted: 2 });
    } finally {
      waiting.kill();
    }
    const short = await cli('services', 'wait', 'etcd', '--passing', '3', '--timeout', '1s');
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('timed out: service "etcd" has 2 of 3 passing member(s) after 1s');
    const api = await central.request('GET', '/api/v1/services/etcd/wait?passing=3&timeout=1s');
    expect(api.status).toBe(408);
    expect(api.json.error).toMatchObject({ code: 'wait_timeout', details: { passing: 2, wanted: 3 } });
  });

  it('deregister and delete; state and index survive a restart', async () => {
    await ok(['services', 'deregister', 'web', 'node-1-80']);
    expect((await ok(['services', 'show', 'web'])).members).toEqual([]);
    await ok(['services', 'delete', 'web']);
    expect((await cli('services', 'show', 'web')).code).toBe(4);

    const before = await ok(['services', 'show', 'etcd']);
    first = central;
    expect((await first.stop()).code).toBe(0);
    central = await spawnCentral({ dataDir: first.dataDir });
    central.token = first.token;
    env = { UNDERLAY_URL: central.url, UNDERLAY_TOKEN: central.token, UNDERLAY_CA: central.caPath };
    const after = await ok(['services', 'show', 'etcd']);
    expect(after.modifyIndex).toBe(before.modifyIndex);
    expect(after.members.map((m: { id: string; status: string }) => [m.id, m.status])).toEqual(before.members.map((m: { id: string; status: string }) => [m.id, m.status]));
    // The next change continues the index from where it was.
    await ok(['services', 'fail', 'etcd', 'node-1-2379']);
    expect((await ok(['services', 'show', 'etcd'])).modifyIndex).toBeGreaterThan(before.modifyIndex);
  });
});
