import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Step } from '../../shared/api/workflows.js';
import { InvalidError } from '../../shared/errors/domain-errors.js';
import { planStep } from './steps.js';

const step = (s: unknown) => Step.parse(s);

describe('step plans', () => {
  it('run-script takes plain `script` (base64-encoded for the task); actions validate their rendered `with`', () => {
    expect(planStep(step({ task: 'run-script', payload: { script: 'echo hi', timeoutSec: 5 } }), { script: 'echo hi', timeoutSec: 5 }, 'n1')).toEqual({
      via: 'task',
      kind: 'run-script',
      payload: { scriptB64: Buffer.from('echo hi').toString('base64'), timeoutSec: 5 },
    });
    expect(planStep(step({ action: 'power', with: { action: 'cycle' } }), { action: 'cycle' }, 'n1')).toEqual({ via: 'task', kind: 'power', payload: { action: 'cycle' } });
    expect(planStep(step({ action: 'boot-device', with: { device: 'pxe' } }), { device: 'pxe' }, 'n1')).toEqual({ via: 'task', kind: 'boot-device', payload: { device: 'pxe', persistent: false } });
    expect(planStep(step({ action: 'deploy', with: { image: 'debian-12' } }), { image: 'debian-12' }, 'n1')).toEqual({ via: 'deploy', request: { image: 'debian-12', config: 'cloud-init' } });
    expect(() => planStep(step({ action: 'power', with: { action: '{{ params.x }}' } }), { action: 'explode' }, 'n1')).toThrow(InvalidError);
    expect(() => planStep(step({ action: 'register-service', with: {} }), { service: 'etcd', port: 2379, shell: 'x' }, 'n1')).toThrow(/with/);
    expect(planStep(step({ action: 'cert-request', with: { ca: 'etcd', ttl: '{{ params.cert_ttl }}' } }), { ca: 'etcd', ttl: '7d' }, 'n1')).toEqual({ via: 'task', kind: 'cert-request', payload: { ca: 'etcd', ttl: '7d' } });
    expect(planStep(step({ action: 'cert-request', with: { ca: 'etcd' } }), { ca: 'etcd', sans: ['n1', '198.18.0.10'] }, 'n1')).toMatchObject({ payload: { sans: ['n1', '198.18.0.10'] } });
    for (const bad of [{}, { ca: 'Not A CA' }, { ca: 'etcd', ttl: 'forever' }, { ca: 'etcd', sans: ['a b'] }, { ca: 'etcd', key: 'x' }]) expect(() => planStep(step({ action: 'cert-request', with: {} }), bad, 'n1'), JSON.stringify(bad)).toThrow(/cert-request: with/);
    const reg = planStep(step({ action: 'register-service', with: {} }), { service: 'etcd', port: 2379 }, 'node-1');
    expect(reg).toMatchObject({ via: 'register-service', service: 'etcd', port: 2379, member: 'node-1-2379', ttl: '30s' });
  });
});

describe('the register-service heartbeat script (run by sh, as the runner does)', () => {
  let server: Server | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    server?.close();
    if (!dir) return;
    writeFileSync(join(dir, 'underlay-heartbeat-demo-etcd.stop'), ''); // ends the background loop even when the test failed
    await new Promise((res) => setTimeout(res, 1200));
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports pass or fail per its check to the agent with the session in a 0600 header file, in the background, until the stop file exists', async () => {
    dir = mkdtempSync(join(tmpdir(), 'heartbeat-'));
    const seen: { url: string; auth?: string; method: string }[] = [];
    server = createServer((req, res) => {
      seen.push({ url: req.url!, auth: req.headers.authorization, method: req.method! });
      res.writeHead(202).end('{}');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const plan = planStep(step({ action: 'register-service', with: {} }), { service: 'demo-etcd', port: 2379, ttl: '3s', check: 'test -e "$UL_RUN_DIR/healthy"' }, 'node-1');
    if (plan.via !== 'register-service') throw new Error('not a register-service plan');
    const script = join(dir, 'script.sh');
    writeFileSync(script, plan.script);
    const env = { PATH: process.env.PATH, UL_URL: `http://127.0.0.1:${port}`, UL_SESSION: 'sess-123', UL_RUN_DIR: dir };
    const t0 = Date.now();
    const r = spawnSync('sh', [script], { cwd: dir, env, encoding: 'utf8', timeout: 10_000 });
    expect(r.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3000); // the loop runs in the background: the task finishes
    expect(r.stdout).toContain('heartbeat of demo-etcd/');
    const until = async (pred: () => boolean) => {
      const end = Date.now() + 8000;
      while (!pred() && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
    };
    await until(() => seen.length >= 1);
    expect(seen[0]).toEqual({ method: 'PUT', url: '/api/v1/services/demo-etcd/members/node-1-2379/fail', auth: 'Bearer sess-123' });
    expect(spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout).not.toContain('sess-123'); // never on a command line
    writeFileSync(join(dir, 'healthy'), '');
    await until(() => seen.some((s) => s.url.endsWith('/pass')));
    expect(seen.some((s) => s.url.endsWith('/pass'))).toBe(true);
    expect(spawnSync('stat', ['-c', '%a', join(dir, 'heartbeat.auth')], { encoding: 'utf8' }).stdout.trim()).toBe('600');
    writeFileSync(join(dir, 'underlay-heartbeat-demo-etcd.stop'), '');
    await new Promise((res) => setTimeout(res, 1500));
    const n = seen.length;
    await new Promise((res) => setTimeout(res, 1500));
    expect(seen.length).toBe(n);
  });
});
