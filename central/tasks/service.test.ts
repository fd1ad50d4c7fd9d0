import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sodium from 'libsodium-wrappers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTask } from '../../shared/envelope/envelope.js';
import { silentLogger } from '../../shared/log/logger.js';
import { AGENT_COLLECTIONS, AGENTS, type AgentDoc } from '../agents/collections.js';
import { ALL_COLLECTIONS } from '../all-collections.test-support.js';
import { FileStore } from '../store/file-store.js';
import { TaskService } from './service.js';

let dir: string;
let store: FileStore;
let svc: TaskService;
let keys: { publicKey: Uint8Array; privateKey: Uint8Array };

const agentDoc = (id: string, site: string, over: Partial<AgentDoc> = {}): AgentDoc => ({
  id, site, name: id, certFingerprint: `fp-${id}`, certSerial: '1', sealPublicKey: 'x', agentVersion: 't', nextSeq: 1,
  createdAt: new Date(0).toISOString(), updatedAt: new Date(0).toISOString(), ...over,
});

beforeEach(async () => {
  await sodium.ready;
  keys = sodium.crypto_sign_keypair();
  dir = mkdtempSync(join(tmpdir(), 'tasksvc-'));
  store = await FileStore.open({ dir, collections: ALL_COLLECTIONS, logger: silentLogger });
  for (const name of ['s1', 's2']) await store.put('sites', { id: name, name, params: {}, createdAt: 'x', updatedAt: 'x' });
  svc = new TaskService(store, keys.privateKey, silentLogger);
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('TaskService', () => {
  it('signs tasks for the site\'s agent with increasing sequence numbers', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    const t1 = await svc.create({ site: 's1', kind: 'ping' });
    const t2 = await svc.create({ site: 's1', kind: 'ping' });
    expect([t1.seq, t2.seq]).toEqual([1, 2]);
    const opened = await openTask(t2.signed, keys.publicKey);
    expect(opened).toMatchObject({ ok: true, envelope: { agent: 'a1', site: 's1', seq: 2 } });
  });

  it('never hands out one sequence number twice when a commit waits before it applies (store compaction)', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    // The file store pauses writers while it switches journals: a commit then waits before its claim lands.
    const commit = store.commit.bind(store);
    let paused = true;
    store.commit = async (ops) => {
      if (paused) await new Promise((r) => setTimeout(r, 20));
      return commit(ops);
    };
    const both = await Promise.all([svc.createMany([{ site: 's1', kind: 'ping' }, { site: 's1', kind: 'ping' }]), svc.create({ site: 's1', kind: 'ping' })]);
    paused = false;
    const seqs = [...both[0].map((t) => t.seq), both[1].seq];
    expect(new Set(seqs).size).toBe(3);
    expect((await svc.create({ site: 's1', kind: 'ping' })).seq).toBeGreaterThan(Math.max(...seqs));
  });

  it('picks up an agent that joins later, skips revoked agents, prefers the most recently seen', async () => {
    await expect(svc.create({ site: 's2', kind: 'ping' })).rejects.toThrow(/no joined agent/);
    await store.put(AGENTS, agentDoc('b1', 's2', { lastSeenAt: '2026-01-01T00:00:00Z' }));
    expect((await svc.create({ site: 's2', kind: 'ping' })).agent).toBe('b1');
    await store.put(AGENTS, agentDoc('b2', 's2', { lastSeenAt: '2026-06-01T00:00:00Z' }));
    expect((await svc.create({ site: 's2', kind: 'ping' })).agent).toBe('b2');
    await store.put(AGENTS, { ...store.get<AgentDoc>(AGENTS, 'b2')!, revokedAt: 'now' });
    expect((await svc.create({ site: 's2', kind: 'ping' })).agent).toBe('b1');
    await store.put(AGENTS, { ...store.get<AgentDoc>(AGENTS, 'b1')!, revokedAt: 'now' });
    await expect(svc.create({ site: 's2', kind: 'ping' })).rejects.toThrow(/no joined agent/);
  });

  it('routes a machine task to the agent that serves the machine, never the most recently seen one', async () => {
    await store.put(AGENTS, agentDoc('b1', 's2', { lastSeenAt: '2026-01-01T00:00:00Z' }));
    await store.put(AGENTS, agentDoc('b2', 's2', { lastSeenAt: '2026-06-01T00:00:00Z' }));
    const now = new Date().toISOString();
    const machine = (id: string, servedBy?: string) => ({ id, name: id, site: 's2', macs: [], profiles: [], params: {}, bootenv: 'local', state: 'discovered', netboot: true, createdAt: now, updatedAt: now, ...(servedBy ? { servedBy } : {}) });
    await store.put('machines', machine('m1', 'b1'));
    await store.put('machines', machine('m2'));
    // m1 is served by b1 although b2 was seen more recently.
    expect((await svc.create({ site: 's2', machine: 'm1', kind: 'set-netboot', payload: { netboot: false } })).agent).toBe('b1');
    // m2 has no serving agent at a two-agent site: refused, naming the machine.
    await expect(svc.create({ site: 's2', machine: 'm2', kind: 'set-netboot', payload: { netboot: false } })).rejects.toThrow(/machine "m2" has not been served/);
    // Its serving agent revoked, with one agent left: that agent takes it.
    await store.put(AGENTS, { ...store.get<AgentDoc>(AGENTS, 'b1')!, revokedAt: 'now' });
    expect((await svc.create({ site: 's2', machine: 'm1', kind: 'set-netboot', payload: { netboot: false } })).agent).toBe('b2');
    expect((await svc.create({ site: 's2', machine: 'm2', kind: 'set-netboot', payload: { netboot: false } })).agent).toBe('b2');
  });

  it('keeps the envelope only while the task is deliverable, and an exec\'s module only in it', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    const now = new Date().toISOString();
    await store.put('machines', { id: 'm1', name: 'm1', site: 's1', macs: [], profiles: [], params: {}, bootenv: 'local', state: 'deployed', netboot: false, createdAt: now, updatedAt: now });
    const module = Buffer.alloc(200_000, 'M');
    const t = await svc.create({ site: 's1', machine: 'm1', kind: 'exec', payload: { cmdB64: Buffer.from('python3').toString('base64'), stdinB64: module.toString('base64') } });
    const omitted = { stdinB64: { bytes: 200_000, sha256: createHash('sha256').update(module).digest('hex') } };
    // Stored once: the envelope carries the module to the agent; the document has its size and digest.
    const queued = svc.get(t.id)!;
    expect(queued.payload).toEqual({ cmdB64: Buffer.from('python3').toString('base64') });
    expect(queued.payloadOmitted).toEqual(omitted);
    expect(t.payloadOmitted).toEqual(omitted); // the create's answer too
    const signed = JSON.parse(Buffer.from(queued.signed!.canonical, 'base64').toString('utf8')) as { payload: { stdinB64: string } };
    expect(signed.payload.stdinB64).toBe(module.toString('base64'));
    expect(await svc.pendingFor('a1')).toHaveLength(1);
    await svc.applyReport('a1', { type: 'report', id: 'r1', taskId: t.id, state: 'accepted', at: now });
    const accepted = svc.get(t.id)!;
    expect(accepted.signed).toBeUndefined(); // never sent again once the agent reported on it
    expect(accepted.payloadOmitted).toEqual(omitted);
    await svc.applyReport('a1', { type: 'report', id: 'r2', taskId: t.id, state: 'succeeded', at: now, exitCode: 0, output: 'ok' });
    const done = svc.get(t.id)!;
    expect(done.payload).toEqual({ cmdB64: Buffer.from('python3').toString('base64') });
    expect(done.payloadOmitted).toEqual(omitted);
    expect(done.output).toBe('ok');
    // The slimmed task is what is durable: a reopened store has it too.
    await store.close();
    store = await FileStore.open({ dir, collections: ALL_COLLECTIONS, logger: silentLogger });
    expect(store.get<Record<string, unknown>>('tasks', t.id)).toMatchObject({ state: 'succeeded', payloadOmitted: { stdinB64: { bytes: 200_000 } } });
    expect(store.get<Record<string, unknown>>('tasks', t.id)!.signed).toBeUndefined();
  });

  it('keeps a run-script\'s script and a short exec stdin after the task is final', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    const at = new Date().toISOString();
    await store.put('machines', { id: 'm1', name: 'm1', site: 's1', macs: [], profiles: [], params: {}, bootenv: 'local', state: 'deployed', netboot: false, createdAt: at, updatedAt: at });
    const long = Buffer.alloc(5000, 'S').toString('base64');
    const script = await svc.create({ site: 's1', machine: 'm1', kind: 'run-script', payload: { scriptB64: long } });
    const exec = await svc.create({ site: 's1', machine: 'm1', kind: 'exec', payload: { cmdB64: 'dHJ1ZQ==', stdinB64: 'eA==' } });
    for (const [i, t] of [script, exec].entries()) await svc.applyReport('a1', { type: 'report', id: `r${i}`, taskId: t.id, state: 'succeeded', at });
    expect(svc.get(script.id)!.payload).toEqual({ scriptB64: long });
    expect(svc.get(exec.id)!.payload).toEqual({ cmdB64: 'dHJ1ZQ==', stdinB64: 'eA==' });
    expect(svc.get(script.id)!.payloadOmitted).toBeUndefined();
  });

  it('a succeeded task\'s effect on the machine is written in the same commit as its state; two in one batch both apply', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    const at = new Date().toISOString();
    await store.put('machines', { id: 'm1', name: 'm1', site: 's1', macs: [], profiles: [], params: {}, bootenv: 'local', state: 'deployed', netboot: true, createdAt: at, updatedAt: at });
    const netboot = await svc.create({ site: 's1', machine: 'm1', kind: 'set-netboot', payload: { netboot: false } });
    const bootenv = await svc.create({ site: 's1', machine: 'm1', kind: 'set-bootenv', payload: { bootenv: 'debian' } });
    const commits: string[][] = [];
    const commit = store.commit.bind(store);
    store.commit = async (ops) => {
      commits.push(ops.map((o) => `${o.collection}/${o.type === 'put' ? o.doc.id : o.id}`));
      return commit(ops);
    };
    await svc.applyReports('a1', [
      { type: 'report', id: 'r1', taskId: netboot.id, state: 'succeeded', at },
      { type: 'report', id: 'r2', taskId: bootenv.id, state: 'succeeded', at },
    ]);
    // One commit holds both tasks and the machine (once per effect, the second over the first).
    expect(commits).toHaveLength(1);
    expect(commits[0]).toEqual([`tasks/${netboot.id}`, `tasks/${bootenv.id}`, 'machines/m1', 'machines/m1']);
    expect(store.get<Record<string, unknown>>('machines', 'm1')).toMatchObject({ netboot: false, bootenv: 'debian' });
    // A commit that fails leaves neither the task succeeded nor the machine changed.
    const again = await svc.create({ site: 's1', machine: 'm1', kind: 'set-netboot', payload: { netboot: true } });
    store.commit = async () => {
      throw new Error('disk full');
    };
    await expect(svc.applyReport('a1', { type: 'report', id: 'r3', taskId: again.id, state: 'succeeded', at })).rejects.toThrow(/disk full/);
    expect(svc.get(again.id)!.state).toBe('queued');
    expect(store.get<Record<string, unknown>>('machines', 'm1')).toMatchObject({ netboot: false });
    store.commit = commit;
  });

  it('a report is applied once by id; later reports never move a finished task backwards', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    const t = await svc.create({ site: 's1', kind: 'ping' });
    const at = new Date().toISOString();
    expect(await svc.applyReport('a1', { type: 'report', id: 'r1', taskId: t.id, state: 'succeeded', at })).toBe('applied');
    expect(await svc.applyReport('a1', { type: 'report', id: 'r1', taskId: t.id, state: 'succeeded', at })).toBe('duplicate');
    expect(await svc.applyReport('a2', { type: 'report', id: 'r2', taskId: t.id, state: 'failed', at })).toBe('ignored');
    await svc.applyReport('a1', { type: 'report', id: 'r3', taskId: t.id, state: 'accepted', at });
    const cur = svc.get(t.id)!;
    expect(cur.state).toBe('succeeded');
    expect(cur.history.filter((h) => h.reportId === 'r1')).toHaveLength(1);
  });

  it('keeps the latest progress of a running task (image-deploy) on the task, and the failure reason', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    const t = await svc.create({ site: 's1', kind: 'ping' });
    const at = new Date().toISOString();
    const p1 = { phase: 'write' as const, bytesWritten: 1 << 20, rawSize: 8 << 20, rateBytesPerSec: 1 << 19 };
    const p2 = { ...p1, bytesWritten: 4 << 20 };
    await svc.applyReport('a1', { type: 'report', id: 'p1', taskId: t.id, state: 'running', progress: p1, at });
    await svc.applyReport('a1', { type: 'report', id: 'p2', taskId: t.id, state: 'running', progress: p2, at });
    expect(svc.get(t.id)).toMatchObject({ state: 'running', progress: p2 });
    await svc.applyReport('a1', { type: 'report', id: 'f', taskId: t.id, state: 'failed', reason: 'hash-mismatch', at });
    await svc.applyReport('a1', { type: 'report', id: 'late', taskId: t.id, state: 'running', progress: p1, at });
    expect(svc.get(t.id)).toMatchObject({ state: 'failed', reason: 'hash-mismatch', progress: p2 });
  });

  it('a bad-signature rejection names an unverified id: it is recorded but cannot finish the genuine task', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    const t = await svc.create({ site: 's1', kind: 'ping' });
    const at = new Date().toISOString();
    await svc.applyReport('a1', { type: 'report', id: 'f1', taskId: t.id, state: 'rejected', reason: 'bad-signature', at });
    expect(svc.get(t.id)!.state).toBe('queued');
    expect(svc.get(t.id)!.history.some((h) => h.reportId === 'f1' && h.reason === 'bad-signature')).toBe(true);
    await svc.applyReport('a1', { type: 'report', id: 'r1', taskId: t.id, state: 'succeeded', at });
    expect(svc.get(t.id)!.state).toBe('succeeded');
    // A verified rejection (the agent checked the signature) does finish it.
    const u = await svc.create({ site: 's1', kind: 'ping' });
    await svc.applyReport('a1', { type: 'report', id: 'e1', taskId: u.id, state: 'rejected', reason: 'expired', at });
    expect(svc.get(u.id)!.state).toBe('rejected');
  });

  it('creates a batch in one go with consecutive sequence numbers, or nothing when one input is invalid', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    const before = store.count('tasks');
    await expect(svc.createMany([{ site: 's1', kind: 'ping' }, { site: 's1', kind: 'nope' }])).rejects.toThrow(/tasks\.1: unknown task kind/);
    expect(store.count('tasks')).toBe(before);
    const made = await svc.createMany(Array.from({ length: 5 }, () => ({ site: 's1', kind: 'ping' })));
    const seqs = made.map((t) => t.seq);
    expect(seqs).toEqual([seqs[0], seqs[0] + 1, seqs[0] + 2, seqs[0] + 3, seqs[0] + 4]);
    expect(store.get<AgentDoc>(AGENTS, 'a1')!.nextSeq).toBe(seqs[0] + 5);
  });

  it('applies a batch of reports in order, once each', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    const [t, u] = await svc.createMany([{ site: 's1', kind: 'ping' }, { site: 's1', kind: 'ping' }]);
    const stored = svc.get(t.id)!;
    const at = new Date().toISOString();
    await svc.applyReports('a1', [
      { type: 'report', id: 'x1', taskId: t.id, state: 'accepted', at },
      { type: 'report', id: 'x2', taskId: t.id, state: 'succeeded', output: 'pong', at },
      { type: 'report', id: 'x2', taskId: t.id, state: 'succeeded', output: 'pong', at },
      { type: 'report', id: 'y1', taskId: u.id, state: 'failed', exitCode: 2, at },
      { type: 'report', id: 'z1', taskId: u.id, state: 'accepted', at },
    ]);
    expect(svc.get(t.id)).toMatchObject({ state: 'succeeded', output: 'pong' });
    expect(svc.get(t.id)!.history.map((h) => h.reportId).filter(Boolean)).toEqual(['x1', 'x2']);
    expect(svc.get(u.id)).toMatchObject({ state: 'failed', exitCode: 2 });
    // The batch changed a copy (made once per task): the document it replaced is untouched.
    expect(stored).toMatchObject({ state: 'queued', history: [{ state: 'queued' }] });
    expect(stored.history).toHaveLength(1);
  });

  it('a delivery costs no write of its own: it joins the first report\'s commit, with the time it was sent', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    const [t] = await svc.createMany([{ site: 's1', kind: 'ping' }]);
    const commits: number[] = [];
    const commit = store.commit.bind(store);
    store.commit = async (ops) => (commits.push(ops.length), commit(ops));
    await svc.markDeliveredMany([t]);
    expect(commits).toEqual([]);
    expect(svc.get(t.id)!.state).toBe('queued');
    const at = new Date().toISOString();
    await svc.applyReports('a1', [
      { type: 'report', id: 'x1', taskId: t.id, state: 'accepted', at },
      { type: 'report', id: 'x2', taskId: t.id, state: 'succeeded', at },
    ]);
    expect(commits).toEqual([1]);
    expect(svc.get(t.id)!.history.map((h) => h.state)).toEqual(['queued', 'delivered', 'accepted', 'succeeded']);
    await svc.flushDeliveries();
    expect(commits).toEqual([1]); // nothing left to write
  });

  it('a delivery no report followed is written by itself after deliveredFlushMs, and survives a reopen', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    svc.deliveredFlushMs = 20;
    const [t, u] = await svc.createMany([{ site: 's1', kind: 'ping' }, { site: 's1', kind: 'ping' }]);
    await svc.markDeliveredMany([t, u]);
    await svc.cancel(u.id); // the cancellation's write carries u's delivery
    expect(svc.get(u.id)!.history.map((h) => h.state)).toEqual(['queued', 'delivered', 'cancelled']);
    await new Promise((r) => setTimeout(r, 60));
    expect(svc.get(t.id)!.state).toBe('delivered');
    await store.close();
    store = await FileStore.open({ dir, collections: ALL_COLLECTIONS, logger: silentLogger });
    expect(store.get<{ state: string }>('tasks', t.id)!.state).toBe('delivered');
    // both queued and delivered tasks are redelivered at reconnect
    svc = new TaskService(store, keys.privateKey, silentLogger);
    expect((await svc.pendingFor('a1')).map((x) => x.id)).toEqual([t.id]);
  });
  it('announces a task reaching a final state once (report, cancel, expiry), after it is durable; a failing listener does not fail the report', async () => {
    await store.put(AGENTS, agentDoc('a1', 's1'));
    const seen: string[] = [];
    svc.onTaskFinished(() => {
      throw new Error('listener broke');
    });
    const off = svc.onTaskFinished((t) => {
      expect(store.get<{ state: string }>('tasks', t.id)!.state).toBe(t.state); // durable before the call
      seen.push(`${t.id}:${t.state}`);
    });
    const a = await svc.create({ site: 's1', kind: 'ping' });
    const at = new Date().toISOString();
    await svc.applyReport('a1', { type: 'report', id: 'r1', taskId: a.id, state: 'running', at });
    expect(seen).toEqual([]);
    expect(await svc.applyReport('a1', { type: 'report', id: 'r2', taskId: a.id, state: 'failed', reason: 'boom', at })).toBe('applied');
    await svc.applyReport('a1', { type: 'report', id: 'r3', taskId: a.id, state: 'succeeded', at }); // after terminal: history only
    const b = await svc.create({ site: 's1', kind: 'ping' });
    await svc.cancel(b.id);
    const c = await svc.create({ site: 's1', kind: 'ping', ttl: '1s' });
    await store.put('tasks', { ...store.get<{ id: string }>('tasks', c.id)!, expiresAt: new Date(Date.now() - 1000).toISOString() });
    await svc.pendingFor('a1');
    expect(seen).toEqual([`${a.id}:failed`, `${b.id}:cancelled`, `${c.id}:expired`]);
    off();
    const d = await svc.create({ site: 's1', kind: 'ping' });
    await svc.cancel(d.id);
    expect(seen).toHaveLength(3);
  });
});
