import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signTask } from '../../shared/envelope/envelope.js';
import { silentLogger } from '../../shared/log/logger.js';
import { DesiredState } from '../../shared/protocol/desired-state.js';
import { Outbox } from '../link/outbox.js';
import { DesiredStateCache } from '../state/desired-state-cache.js';
import { RecordLog } from '../state/record-log.js';
import { TaskExecutor } from '../tasks/executor.js';
import { MachineQueue } from '../tasks/machine-queue.js';
import { TaskLog } from '../tasks/task-log.js';
import { createBootApp } from './app.js';
import { MachineTokens } from './machine-token.js';

/** The agent's HTTP boot surface, in process, over a real durable runtime in a temp dir. */
describe('agent HTTP boot surface', () => {
  const dir = mkdtempSync(join(tmpdir(), 'underlay-http-'));
  const KNOWN = '52:54:00:00:00:0a';
  const LOCAL = '52:54:00:00:00:0b';
  const UNKNOWN = '52:54:00:00:00:0c';
  const tokens = new MachineTokens(randomBytes(32));
  let app: ReturnType<typeof createBootApp>;
  let outbox: Outbox;
  let queue: MachineQueue;
  let taskLog: TaskLog;
  let cache: DesiredStateCache;
  let keys: { publicKey: Uint8Array; privateKey: Uint8Array };
  const url = 'http://198.18.0.1:8080';

  beforeAll(async () => {
    await sodium.ready;
    keys = sodium.crypto_sign_keypair();
    outbox = new Outbox(join(dir, 'outbox.jsonl'));
    await outbox.open();
    queue = new MachineQueue(join(dir, 'mq.jsonl'));
    await queue.open();
    taskLog = new TaskLog(join(dir, 'tasks.jsonl'));
    await taskLog.open();
    const rejections = new RecordLog<never>(join(dir, 'rej.jsonl'));
    await rejections.open();
    cache = new DesiredStateCache(join(dir, 'state.json'), silentLogger);
    await cache.replace(
      DesiredState.parse({
        version: 'v1',
        generatedAt: new Date().toISOString(),
        site: { name: 'rack1', params: {} },
        machines: [
          { id: 'm-known', name: 'web-01', macs: [KNOWN], bootenv: 'discovery', bootState: 'discovered', netboot: true, profiles: [], params: {} },
          { id: 'm-local', name: 'db-01', macs: [LOCAL], bootenv: 'discovery', bootState: 'installed', netboot: false, profiles: [], params: {} },
        ],
      }),
    );
    const executor = new TaskExecutor({ me: { agent: 'a1', site: 'rack1' }, signingPublicKey: keys.publicKey, taskLog, outbox, machineQueue: queue, desiredState: cache, rejections, requestState: () => undefined, logger: silentLogger });
    const bootDir = join(dir, 'boot');
    mkdirSync(join(bootDir, 'discovery'), { recursive: true });
    writeFileSync(join(bootDir, 'discovery', 'vmlinuz'), Buffer.alloc(10_000, 7));
    writeFileSync(join(dir, 'secret.txt'), 'top secret');
    app = createBootApp({
      rt: {
        desiredState: cache,
        machineQueue: queue,
        executor,
        taskLog,
        outbox,
        logger: silentLogger,
        emitEvent: (kind, data, id) => outbox.add({ type: 'event', id: id ?? randomUUID(), kind, data, at: new Date().toISOString() }),
      },
      tokens,
      agent: { httpUrl: url, tftpAddress: '198.18.0.1', pubkey: Buffer.from(keys.publicKey).toString('base64') },
      bootDir,
      ipxeDir: join(dir, 'ipxe'),
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const script = async (mac: string, platform = 'pcbios') => (await app.request(`/ipxe/script?mac=${mac}&platform=${platform}&buildarch=x86_64`)).text();

  it('chains every iPXE client to its per-machine script', async () => {
    const res = await app.request('/boot.ipxe');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(`chain ${url}/ipxe/script?mac=\${mac}&uuid=\${uuid}&buildarch=\${buildarch}&platform=\${platform}`);
  });

  it('boots an unknown machine into discovery with its token and the id the agent proposes', async () => {
    const s = await script(UNKNOWN);
    expect(s).toContain(`underlay.token=${tokens.issue(UNKNOWN)}`);
    expect(s).toContain(`underlay.machine=${tokens.proposedMachineId(UNKNOWN)}`);
    expect(s).toContain(`kernel ${url}/files/discovery/vmlinuz`);
  });

  it('boots a known machine with netboot disallowed from its disk (BIOS and UEFI)', async () => {
    expect(await script(LOCAL)).toContain('sanboot --no-describe --drive 0x80');
    const efi = await script(LOCAL, 'efi');
    expect(efi).toContain('exit');
    expect(efi).not.toContain('sanboot');
  });

  it('shows the outbox depth (the gauge) in /healthz', async () => {
    const before = outbox.depth();
    await outbox.add({ type: 'event', id: randomUUID(), kind: 'test', data: {}, at: new Date(0).toISOString() });
    const h = (await (await app.request('/healthz')).json()) as { status: string; outbox: { records: number; bytes: number; maxRecords: number; full: boolean } };
    expect(h.status).toBe('ok');
    expect(h.outbox).toMatchObject({ records: before.records + 1, maxRecords: before.maxRecords, full: false });
    expect(h.outbox.bytes).toBeGreaterThan(before.bytes);
  });

  it('rejects a request without a valid MAC', async () => {
    expect((await app.request('/ipxe/script?mac=nope')).status).toBe(400);
  });

  it('serves boot files with Range and refuses traversal', async () => {
    const part = await app.request('/files/discovery/vmlinuz', { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(Buffer.alloc(10, 7));
    for (const p of ['/files/../secret.txt', '/files/%2e%2e/secret.txt', '/files/discovery/%2e%2e/%2e%2e/secret.txt']) {
      const r = await app.request(p);
      expect([400, 404]).toContain(r.status);
      expect(await r.text()).not.toContain('top secret');
    }
  });

  it('accepts discovery only with a genuine machine token, durably, and answers the machine id', async () => {
    expect((await app.request('/api/v1/discovery', { method: 'POST', body: '{}' })).status).toBe(401);
    const forged = `${UNKNOWN.replace(/:/g, '')}-${'A'.repeat(32)}`;
    expect((await app.request('/api/v1/discovery', { method: 'POST', body: '{}', headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);
    const auth = { authorization: `Bearer ${tokens.issue(UNKNOWN)}` };
    expect((await app.request('/api/v1/discovery', { method: 'POST', body: 'not json', headers: auth })).status).toBe(400);
    const before = outbox.size;
    const ok = await app.request('/api/v1/discovery', { method: 'POST', body: JSON.stringify({ cpu: { threads: 2 } }), headers: auth });
    expect(ok.status).toBe(202);
    expect(await ok.json()).toEqual({ accepted: true, machine: tokens.proposedMachineId(UNKNOWN) });
    expect(outbox.size).toBe(before + 1);
    const ev = outbox.messages().at(-1) as { kind: string; data: { mac: string; facts: unknown } };
    expect(ev.kind).toBe('discovery');
    expect(ev.data).toMatchObject({ mac: UNKNOWN, facts: { cpu: { threads: 2 } } });
  });

  it('hands a machine only its own queued tasks, and records the runner’s report', async () => {
    const env = { v: 1 as const, id: randomUUID(), site: 'rack1', agent: 'a1', seq: 1, kind: 'run-script', machine: 'm-known', payload: { scriptB64: Buffer.from('echo hi').toString('base64') }, issuedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString() };
    const signed = await signTask(env, keys.privateKey);
    await queue.add({ id: env.id, machine: 'm-known', kind: env.kind, signed, expiresAt: env.expiresAt });
    const other = await app.request('/api/v1/runner/next?wait=0', { headers: { authorization: `Bearer ${tokens.issue(UNKNOWN)}` } });
    expect(other.status).toBe(204);
    const mine = await app.request('/api/v1/runner/next?wait=0', { headers: { authorization: `Bearer ${tokens.issue(KNOWN)}` } });
    expect(mine.status).toBe(200);
    expect(await mine.json()).toEqual(signed);
    const wrong = await app.request(`/api/v1/runner/tasks/${env.id}/events`, { method: 'POST', body: JSON.stringify({ state: 'succeeded' }), headers: { authorization: `Bearer ${tokens.issue(UNKNOWN)}` } });
    expect(wrong.status).toBe(404);
    const done = await app.request(`/api/v1/runner/tasks/${env.id}/events`, { method: 'POST', body: JSON.stringify({ state: 'succeeded', output: 'hi\n', exitCode: 0 }), headers: { authorization: `Bearer ${tokens.issue(KNOWN)}` } });
    expect(done.status).toBe(200);
    const report = outbox.messages().at(-1) as { type: string; taskId: string; state: string; output: string; exitCode: number };
    expect(report).toMatchObject({ type: 'report', taskId: env.id, state: 'succeeded', output: 'hi\n', exitCode: 0 });
    expect(queue.get(env.id)).toBeUndefined();
  });

  it('flips a machine to local boot when its install reports success (reinstall-loop guard)', async () => {
    expect((await app.request(`/m/${tokens.issue(UNKNOWN)}/done`, { method: 'POST' })).status).toBe(404);
    const res = await app.request(`/m/${tokens.issue(KNOWN)}/done`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(cache.machineByMac(KNOWN)).toMatchObject({ netboot: false, bootenv: 'local' });
    expect(await script(KNOWN)).toContain('sanboot --no-describe --drive 0x80');
    expect((outbox.messages().at(-1) as { kind: string }).kind).toBe('install-done');
  });

  it('refuses per-machine files for a forged token', async () => {
    expect((await app.request(`/m/${UNKNOWN.replace(/:/g, '')}-${'B'.repeat(32)}/user-data`)).status).toBe(403);
  });

  it('relays service health for a machine’s own members through the outbox', async () => {
    const path = '/api/v1/services/etcd/members/etcd-1-2379';
    expect((await app.request(`${path}/pass`, { method: 'PUT' })).status).toBe(401);
    const auth = { authorization: `Bearer ${tokens.issue(KNOWN)}` };
    expect((await app.request(`${path}/maybe`, { method: 'PUT', headers: auth })).status).toBe(404);
    expect((await app.request(`${path}/warn`, { method: 'PUT', headers: auth, body: '{"note":5}' })).status).toBe(400);
    const res = await app.request(`${path}/warn`, { method: 'PUT', headers: auth, body: '{"note":"disk 91%"}' });
    expect(res.status).toBe(202);
    const ev = outbox.messages().at(-1) as { kind: string; data: unknown };
    expect(ev.kind).toBe('service-status');
    expect(ev.data).toEqual({ service: 'etcd', member: 'etcd-1-2379', status: 'warning', machineId: 'm-known', note: 'disk 91%' });
  });
});
