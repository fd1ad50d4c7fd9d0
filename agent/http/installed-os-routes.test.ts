import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { DesiredStateCache } from '../state/desired-state-cache.js';
import { bootRuntime, machine, siteState, tokenIn } from './boot-http.test-support.js';
import { OsCredentials } from './os-credentials.js';

const IMAGE = { name: 'debian-12', sha256: 'a'.repeat(64), size: 1000, format: 'zstd', rawSha256: 'b'.repeat(64), rawSize: 4096 };
const DEPLOY = { image: IMAGE, config: 'cloud-init' };

/** The deploy on the agent: the installed-OS credential, its routes, netboot off/on, progress. */
describe('installed-OS credential and deploy effects', () => {
  const dir = mkdtempSync(join(tmpdir(), 'underlay-os-'));
  const A = '52:54:00:00:01:0a';
  const B = '52:54:00:00:01:0b';
  let rt: Awaited<ReturnType<typeof bootRuntime>>;

  beforeAll(async () => {
    rt = await bootRuntime(dir, {
      rates: { claim: { mac: { burst: 50, perSec: 1 }, source: { burst: 100, perSec: 10 } } },
      state: siteState([machine('m-a', 'web-01', A, { bootenv: 'deployed-os' }), machine('m-b', 'web-02', B, { bootenv: 'deployed-os' })], {
        bootenvs: [
          {
            name: 'deployed-os',
            os: { family: 'debian', version: '12' },
            kernel: { url: 'discovery/vmlinuz' },
            bootParams: 'underlay.token={{ token }} console=ttyS0',
            templates: [
              { name: 'meta-data', path: 'meta-data', template: 'instance-id: {{ machine.id }}\nlocal-hostname: {{ machine.name }}\n', validate: 'none' },
              { name: 'user-data', path: 'user-data', template: '#cloud-config\nhostname: {{ machine.name }}\n', validate: 'none' },
            ],
          },
        ],
      }),
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const bearer = (s: string) => ({ authorization: `Bearer ${s}` });
  const post = (path: string, body: unknown, cred?: string) =>
    rt.app.request(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...(cred ? bearer(cred) : {}) } });
  const claim = async (mac: string) => {
    const script = await (await rt.app.request(`/ipxe/script?mac=${mac}&platform=pcbios&buildarch=x86_64`)).text();
    const res = await post('/api/v1/boot/claim', { token: tokenIn(script) });
    expect(res.status).toBe(200);
    return ((await res.json()) as { session: string }).session;
  };
  /** Queues a task for the machine and has the session take it from runner/next. */
  const handOut = async (machineId: string, session: string, kind: string, payload: unknown) => {
    const env = await rt.queueTask(machineId, '', kind, payload);
    const res = await rt.app.request('/api/v1/runner/next?wait=0', { headers: bearer(session) });
    expect(res.status).toBe(200);
    return env.id;
  };
  const issue = async (session: string | undefined, task: string) => post('/api/v1/runner/os-credential', { task }, session);
  const osReport = (machineId: string) => ({ machineId, os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' }, kernel: '6.1.0-57-amd64', hostname: 'web-01', addresses: [{ interface: 'ens3', mac: A, address: '198.18.0.50' }] });

  let sessionA: string;
  let deployA: string;
  let credA: string;

  it('issues the credential once, only to the boot session running that image-deploy', async () => {
    sessionA = await claim(A);
    const sessionB = await claim(B);
    const script = await handOut('m-a', sessionA, 'run-script', { scriptB64: Buffer.from('true').toString('base64') });
    deployA = await handOut('m-a', sessionA, 'image-deploy', DEPLOY);

    expect((await issue(undefined, deployA)).status).toBe(401);
    expect((await issue('forged-credential-forged-credential-forged-00', deployA)).status).toBe(401);
    expect((await issue(sessionB, deployA)).status).toBe(403); // another machine's session
    expect((await issue(sessionA, script)).status).toBe(403); // not an image-deploy
    expect((await issue(sessionA, 'no-such-task')).status).toBe(403);
    expect((await post('/api/v1/runner/os-credential', '{"task": ', sessionA)).status).toBe(400);
    expect((await post('/api/v1/runner/os-credential', { task: deployA, extra: 1 }, sessionA)).status).toBe(400);
    expect(rt.osCredentials.ofMachine('m-a')).toBeUndefined(); // nothing issued by any refusal

    const res = await issue(sessionA, deployA);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { credential: string; seedUrl: string; machine: string; seqFloor: number; agent: string };
    credA = body.credential;
    expect(credA).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body).toMatchObject({ machine: 'm-a', agent: 'a1', seedUrl: `http://198.18.0.1:8080/m/${credA}/` });
    expect(body.seqFloor).toBeGreaterThanOrEqual(2);

    const again = await issue(sessionA, deployA); // single-use: a replay (or a racing copy) gets nothing
    expect(again.status).toBe(409);
    expect(await again.text()).not.toContain(credA);
    // Stored hashed and durably: the file never holds the credential.
    expect(readFileSync(join(dir, 'os-credentials.jsonl'), 'utf8')).not.toContain(credA);
  });

  it('opens that machine\'s NoCloud configs with the credential; a forged one changes nothing', async () => {
    const meta = await rt.app.request(`/m/${credA}/meta-data`);
    expect(meta.status).toBe(200);
    expect(await meta.text()).toBe('instance-id: m-a\nlocal-hostname: web-01\n');
    expect(await (await rt.app.request(`/m/${credA}/user-data`)).text()).toContain('hostname: web-01');
    const forged = await rt.app.request(`/m/${'x'.repeat(43)}/meta-data`);
    expect(forged.status).toBe(403);
    expect(await forged.text()).not.toContain('m-a');
  });

  it('takes the installed runner\'s OsReport as a machine-os event, from that machine only', async () => {
    const before = rt.events('machine-os').length;
    expect((await post('/api/v1/runner/os-report', osReport('m-a'))).status).toBe(401);
    expect((await post('/api/v1/runner/os-report', osReport('m-a'), sessionA)).status).toBe(403); // a boot session is no OS
    expect((await post('/api/v1/runner/os-report', osReport('m-b'), credA)).status).toBe(403); // another machine's id
    expect((await post('/api/v1/runner/os-report', { ...osReport('m-a'), evil: true }, credA)).status).toBe(400);
    expect((await post('/api/v1/runner/os-report', '['.repeat(5000), credA)).status).toBe(400);
    expect((await post('/api/v1/runner/os-report', 'x'.repeat(70 * 1024), credA)).status).toBe(413);
    expect(rt.events('machine-os')).toHaveLength(before);

    const ok = await post('/api/v1/runner/os-report', osReport('m-a'), credA);
    expect(ok.status).toBe(200);
    const ev = rt.events('machine-os').at(-1)!;
    expect(ev.data).toMatchObject({ machineId: 'm-a', deployTaskId: deployA, os: { id: 'debian', versionId: '12' }, kernel: '6.1.0-57-amd64', addresses: [{ interface: 'ens3', address: '198.18.0.50' }] });
  });

  it('forwards deploy progress and reasons; on success turns netboot off, durably, before answering', async () => {
    const progress = { phase: 'write', bytesWritten: 1 << 20, rawSize: 4096 << 10, bytesFetched: 5000, size: 1000, rateBytesPerSec: 1 << 19, elapsedSec: 2 };
    expect((await post(`/api/v1/runner/tasks/${deployA}/events`, { state: 'running', progress: { ...progress, phase: 'nonsense' } }, sessionA)).status).toBe(400);
    expect((await post(`/api/v1/runner/tasks/${deployA}/events`, { state: 'running', progress }, sessionA)).status).toBe(200);
    expect(rt.outbox.messages().filter((m) => m.type === 'report' && m.taskId === deployA).at(-1)).toMatchObject({ state: 'running', progress });
    // The installed OS cannot report for the discovery session's task.
    expect((await post(`/api/v1/runner/tasks/${deployA}/events`, { state: 'succeeded' }, credA)).status).toBe(404);
    expect(rt.cache.machineById('m-a')!.netboot).toBe(true);

    expect((await post(`/api/v1/runner/tasks/${deployA}/events`, { state: 'succeeded', exitCode: 0, output: 'written' }, sessionA)).status).toBe(200);
    expect(rt.cache.machineById('m-a')!.netboot).toBe(false);
    // Persisted: a restarted agent (central down: only its own files) still boots the machine from disk.
    const reopened = new DesiredStateCache(join(dir, 'state.json'), silentLogger);
    expect(reopened.machineById('m-a')!.netboot).toBe(false);
    expect(reopened.machineById('m-b')!.netboot).toBe(true);
  });

  it('keeps the credential across an agent restart; the installed OS takes and reports tasks with it', async () => {
    const reopened = new OsCredentials(join(dir, 'os-credentials.jsonl'));
    await reopened.open();
    expect(reopened.find(credA)?.task).toBe(deployA);
    await reopened.close();

    const env = await rt.queueTask('m-a', 'uname -a');
    const next = await rt.app.request('/api/v1/runner/next?wait=0', { headers: bearer(credA) });
    expect(next.status).toBe(200);
    expect((await post(`/api/v1/runner/tasks/${env.id}/events`, { state: 'succeeded', exitCode: 0, output: 'Linux' }, sessionA)).status).toBe(404);
    expect((await post(`/api/v1/runner/tasks/${env.id}/events`, { state: 'succeeded', exitCode: 0, output: 'Linux' }, credA)).status).toBe(200);
    expect(rt.reports(env.id).at(-1)).toMatchObject({ state: 'succeeded' });
  });

  it('release: netboot on again and the credential revoked; a failed deploy changes neither', async () => {
    const failedRelease = await rt.queueTask('m-a', '', 'release', { wipe: 'quick' });
    await rt.app.request('/api/v1/runner/next?wait=0', { headers: bearer(credA) });
    expect((await post(`/api/v1/runner/tasks/${failedRelease.id}/events`, { state: 'failed', reason: 'write-failed' }, credA)).status).toBe(200);
    expect(rt.reports(failedRelease.id).at(-1)).toMatchObject({ state: 'failed', reason: 'write-failed' });
    expect(rt.cache.machineById('m-a')!.netboot).toBe(false);
    expect(rt.osCredentials.find(credA)).toBeDefined();

    const release = await rt.queueTask('m-a', '', 'release', { wipe: 'quick' });
    await rt.app.request('/api/v1/runner/next?wait=0', { headers: bearer(credA) });
    expect((await post(`/api/v1/runner/tasks/${release.id}/events`, { state: 'succeeded', exitCode: 0 }, credA)).status).toBe(200);
    expect(rt.cache.machineById('m-a')!.netboot).toBe(true);
    expect((await rt.app.request('/api/v1/runner/next?wait=0', { headers: bearer(credA) })).status).toBe(401);
    expect((await rt.app.request(`/m/${credA}/meta-data`)).status).toBe(403);
  });

  it('a new deploy revokes the previous deploy\'s credential when it is handed out', async () => {
    const session = await claim(B);
    const first = await handOut('m-b', session, 'image-deploy', DEPLOY);
    const cred = ((await (await issue(session, first)).json()) as { credential: string }).credential;
    expect((await post('/api/v1/runner/os-report', osReport('m-b'), cred)).status).toBe(200);
    expect((await post(`/api/v1/runner/tasks/${first}/events`, { state: 'failed', reason: 'hash-mismatch' }, session)).status).toBe(200);
    expect(rt.cache.machineById('m-b')!.netboot).toBe(true); // a failed deploy never turns netboot off
    await handOut('m-b', session, 'image-deploy', DEPLOY);
    expect((await post('/api/v1/runner/os-report', osReport('m-b'), cred)).status).toBe(401);
  });
});
