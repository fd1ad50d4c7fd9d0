import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sodium from 'libsodium-wrappers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signTask, type RejectReason, type TaskEnvelope } from '../../shared/envelope/envelope.js';
import { silentLogger } from '../../shared/log/logger.js';
import type { DesiredState } from '../../shared/protocol/desired-state.js';
import type { OutboxMessage } from '../link/outbox.js';
import { Outbox } from '../link/outbox.js';
import { DesiredStateCache } from '../state/desired-state-cache.js';
import { RecordLog } from '../state/record-log.js';
import { type Bmc, BmcAuthError } from '../bmc/bmc.js';
import { TaskExecutor } from './executor.js';
import { MachineQueue } from './machine-queue.js';
import { TaskLog } from './task-log.js';

type Rejection = { at: string; reason: RejectReason; detail: string; id?: string; seq?: number };
let central: { publicKey: Uint8Array; privateKey: Uint8Array };
let forger: { publicKey: Uint8Array; privateKey: Uint8Array };
beforeAll(async () => {
  await sodium.ready;
  central = sodium.crypto_sign_keypair();
  forger = sodium.crypto_sign_keypair();
});

const me = { agent: 'agent-1', site: 'rack-a' };
const state: DesiredState = {
  version: 'v1', generatedAt: new Date(0).toISOString(), site: { name: 'rack-a', params: {} },
  machines: [{ id: 'm1', name: 'node1', macs: ['52:54:00:00:00:01'], bootenv: 'discovery', state: 'discovered', netboot: true, profiles: [], params: {} }],
  subnets: [], reservations: [], bootenvs: [], profiles: [], paramDefs: [], globalParams: {},
};

/** A BMC that records calls; machine "m1" is on, any other refuses the login. */
const bmcCalls: string[] = [];
function fakeBmc(machineId: string): Bmc {
  const refuse = () => {
    if (machineId !== 'm1') throw new BmcAuthError('the BMC refused user "admin": wrong user name or password');
  };
  return {
    powerState: async () => (refuse(), bmcCalls.push('status'), 'on'),
    power: async (a) => void (refuse(), bmcCalls.push(`power ${a}`)),
    setBootDevice: async (d, p) => void (refuse(), bmcCalls.push(`boot ${d} ${p}`)),
  };
}

let dir: string;
let seq: number;
let parts: Awaited<ReturnType<typeof build>>;

async function build() {
  const taskLog = new TaskLog(join(dir, 'tasks.jsonl'));
  await taskLog.open();
  const outbox = new Outbox(join(dir, 'outbox.jsonl'));
  await outbox.open();
  const machineQueue = new MachineQueue(join(dir, 'machine-tasks.jsonl'));
  await machineQueue.open();
  const rejections = new RecordLog<Rejection>(join(dir, 'rejections.jsonl'));
  const rejected = await rejections.open();
  const desiredState = new DesiredStateCache(join(dir, 'desired-state.json'), silentLogger);
  let stateRequests = 0;
  const events: { kind: string; data: unknown }[] = [];
  const executor = new TaskExecutor({
    me, signingPublicKey: central.publicKey, taskLog, outbox, machineQueue, desiredState, rejections,
    requestState: () => void stateRequests++, logger: silentLogger,
    emitEvent: async (kind, data) => void events.push({ kind, data }),
    bmc: { forMachine: (m) => fakeBmc(m.id) },
  });
  const parts = {
    executor, taskLog, outbox, machineQueue, desiredState, rejectionsLog: rejections, events,
    rejectionsBefore: rejected,
    get stateRequests() { return stateRequests; },
    close: async () => {
      await Promise.all([taskLog.close(), outbox.close(), machineQueue.close(), parts.rejectionsLog.close()]);
    },
  };
  return parts;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'executor-'));
  seq = 0;
  parts = await build();
  await parts.desiredState.replace(state);
});
afterEach(async () => {
  await parts.close();
  rmSync(dir, { recursive: true, force: true });
});

function env(over: Partial<TaskEnvelope> = {}): TaskEnvelope {
  seq++;
  const now = Date.now();
  return { v: 1, id: `task-${seq}`, site: me.site, agent: me.agent, seq, kind: 'ping', machine: null, payload: {}, issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + 60_000).toISOString(), ...over };
}
const sign = (e: TaskEnvelope, key = central.privateKey) => signTask(e, key);
const reports = (taskId?: string) => parts.outbox.messages().filter((m): m is Extract<OutboxMessage, { type: 'report' }> => m.type === 'report' && (!taskId || m.taskId === taskId));
async function rejections(): Promise<Rejection[]> {
  await parts.rejectionsLog.close();
  const log = new RecordLog<Rejection>(join(dir, 'rejections.jsonl'));
  const all = await log.open();
  parts.rejectionsLog = log;
  (parts.executor as unknown as { d: { rejections: RecordLog<Rejection> } }).d.rejections = log;
  return all;
}

describe('TaskExecutor: kinds', () => {
  it('ping: accepted then succeeded with the message, recorded in the task log', async () => {
    const e = env({ payload: { message: 'hello' } });
    await parts.executor.handle(sign(e));
    expect(reports(e.id).map((r) => r.state)).toEqual(['accepted', 'succeeded']);
    expect(reports(e.id)[1].output).toBe('pong: hello');
    expect(parts.taskLog.get(e.id)?.state).toBe('succeeded');
    expect(parts.taskLog.lastSeq).toBe(e.seq);
  });

  it('sync-state asks the central for a fresh copy', async () => {
    const e = env({ kind: 'sync-state' });
    await parts.executor.handle(sign(e));
    expect(parts.stateRequests).toBe(1);
    expect(reports(e.id).at(-1)).toMatchObject({ state: 'succeeded', output: expect.stringContaining('v1') });
  });

  it('set-netboot and set-bootenv change the local view of the machine at once', async () => {
    const a = env({ kind: 'set-netboot', machine: 'm1', payload: { netboot: false } });
    const b = env({ kind: 'set-bootenv', machine: 'm1', payload: { bootenv: 'local' } });
    await parts.executor.handle(sign(a));
    await parts.executor.handle(sign(b));
    expect(parts.desiredState.machineById('m1')).toMatchObject({ netboot: false, bootenv: 'local' });
    expect(parts.desiredState.machineByMac('52:54:00:00:00:01')).toMatchObject({ netboot: false, bootenv: 'local' });
    expect(reports(a.id).at(-1)?.state).toBe('succeeded');
    expect(reports(b.id).at(-1)?.state).toBe('succeeded');
  });

  it('set-netboot for a machine the site does not have fails (unknown-machine)', async () => {
    const e = env({ kind: 'set-netboot', machine: 'nope', payload: { netboot: false } });
    await parts.executor.handle(sign(e));
    expect(reports(e.id).at(-1)).toMatchObject({ state: 'failed', reason: 'unknown-machine' });
    expect(parts.taskLog.get(e.id)?.state).toBe('failed');
  });

  it('machine kinds (run-script, reboot, poweroff) are queued for the machine with their signed envelope, not run here', async () => {
    const kinds = [
      env({ kind: 'run-script', machine: 'm1', payload: { scriptB64: Buffer.from('echo hi').toString('base64') } }),
      env({ kind: 'reboot', machine: 'm1' }),
      env({ kind: 'poweroff', machine: 'm1' }),
    ];
    for (const e of kinds) await parts.executor.handle(sign(e));
    for (const e of kinds) {
      expect(reports(e.id).map((r) => r.state)).toEqual(['accepted']);
      expect(parts.machineQueue.get(e.id)?.signed).toEqual(sign(e));
    }
    expect((await parts.machineQueue.take('m1'))?.id).toBe(kinds[0].id);
  });

  it('power and boot-device run here through the machine\'s BMC (not queued) and report the state read', async () => {
    bmcCalls.length = 0;
    state.machines.push({ id: 'm2', name: 'node2', macs: ['52:54:00:00:00:02'], bootenv: 'discovery', state: 'discovered', netboot: true, profiles: [], params: {} });
    await parts.desiredState.replace({ ...state, version: 'v2' });
    const p = env({ kind: 'power', machine: 'm1', payload: { action: 'cycle' } });
    const b = env({ kind: 'boot-device', machine: 'm1', payload: { device: 'pxe' } });
    await parts.executor.handle(sign(p));
    await parts.executor.handle(sign(b));
    expect(bmcCalls).toEqual(['power cycle', 'status', 'boot pxe false']);
    expect(parts.machineQueue.get(p.id)).toBeUndefined();
    expect(reports(p.id).map((r) => r.state)).toEqual(['accepted', 'succeeded']);
    expect(reports(p.id).at(-1)?.output).toBe('power cycle done; power is on');
    expect(reports(b.id).at(-1)?.output).toBe('boot device pxe (next boot only)');
    expect(parts.events).toEqual([{ kind: 'power-state', data: { readings: [{ machineId: 'm1', state: 'on', readAt: expect.any(String) }] } }]);
    // A refused login: failed with a short reason and the BMC's message; nothing else ran.
    const w = env({ kind: 'power', machine: 'm2', payload: { action: 'on' } });
    await parts.executor.handle(sign(w));
    expect(reports(w.id).at(-1)).toMatchObject({ state: 'failed', reason: 'bmc-auth', output: expect.stringContaining('wrong user name or password') });
    const st = env({ kind: 'power', machine: 'm2', payload: { action: 'status' } });
    await parts.executor.handle(sign(st));
    expect(reports(st.id).at(-1)).toMatchObject({ state: 'failed', reason: 'bmc-auth' });
    const u = env({ kind: 'power', machine: 'nope', payload: { action: 'on' } });
    await parts.executor.handle(sign(u));
    expect(reports(u.id).at(-1)).toMatchObject({ state: 'failed', reason: 'unknown-machine' });
    state.machines.pop();
  });

  it('cancel drops a queued machine task and marks it cancelled', async () => {
    const e = env({ kind: 'reboot', machine: 'm1' });
    await parts.executor.handle(sign(e));
    await parts.executor.cancel(e.id);
    expect(parts.machineQueue.get(e.id)).toBeUndefined();
    expect(parts.taskLog.get(e.id)?.state).toBe('cancelled');
  });
});

describe('TaskExecutor: rejections', () => {
  async function expectRejected(signed: unknown, reason: RejectReason, id: string | undefined) {
    const before = (await rejections()).length;
    await parts.executor.handle(signed);
    const all = await rejections();
    expect(all.length).toBe(before + 1);
    expect(all.at(-1)).toMatchObject({ reason, ...(id ? { id } : {}) });
    if (id) expect(reports(id).at(-1)).toMatchObject({ state: 'rejected', reason });
    if (id) expect(reports(id).some((r) => r.state === 'succeeded' || r.state === 'accepted')).toBe(false);
    // Every rejection is also an event for the central's stream (issue 19), with or without an id.
    expect(parts.events.at(-1)).toMatchObject({ kind: 'task-rejected', data: { reason, ...(id ? { taskId: id } : {}) } });
  }

  it('bad-signature: forged with another key; nothing runs and the id is not marked seen', async () => {
    const e = env({ kind: 'set-netboot', machine: 'm1', payload: { netboot: false } });
    await expectRejected(sign(e, forger.privateKey), 'bad-signature', e.id);
    expect(parts.desiredState.machineById('m1')?.netboot).toBe(true);
    expect(parts.taskLog.get(e.id)).toBeUndefined();
    expect(parts.taskLog.lastSeq).toBe(0);
    // the genuine task with the same id still runs afterwards: a forgery cannot block it
    await parts.executor.handle(sign(e));
    expect(parts.desiredState.machineById('m1')?.netboot).toBe(false);
  });

  it('bad-signature: a tampered payload', async () => {
    const e = env({ payload: { message: 'a' } });
    const s = sign(e);
    const canonical = Buffer.from(Buffer.from(s.canonical, 'base64').toString().replace('"message":"a"', '"message":"b"')).toString('base64');
    await expectRejected({ ...s, canonical }, 'bad-signature', e.id);
  });

  it('expired', async () => {
    const e = env({ expiresAt: new Date(Date.now() - 1000).toISOString() });
    await expectRejected(sign(e), 'expired', e.id);
  });

  it('wrong-agent: another agent, or another site', async () => {
    const a = env({ agent: 'agent-2' });
    await expectRejected(sign(a), 'wrong-agent', a.id);
    const b = env({ site: 'rack-b' });
    await expectRejected(sign(b), 'wrong-agent', b.id);
  });

  it('unknown-kind', async () => {
    const e = env({ kind: 'format-disk' });
    await expectRejected(sign(e), 'unknown-kind', e.id);
  });

  it('malformed: wire shape, and a signed payload that does not fit its kind', async () => {
    await expectRejected({ canonical: 'x' }, 'malformed', undefined);
    const e = env({ kind: 'set-netboot', machine: 'm1', payload: { netboot: 'yes' } });
    await expectRejected(sign(e), 'malformed', e.id);
  });

  it('replay: an unseen task with a sequence at or below the high-water mark, also after a restart', async () => {
    const hi = env();
    hi.seq = 10;
    await parts.executor.handle(sign(hi));
    const low = env();
    low.seq = 4;
    await expectRejected(sign(low), 'replay', low.id);
    const equal = env();
    equal.seq = 10;
    await expectRejected(sign(equal), 'replay', equal.id);

    // restart: everything reopened from disk
    await parts.close();
    parts = await build();
    expect(parts.taskLog.lastSeq).toBe(10);
    const again = env();
    again.seq = 9;
    await expectRejected(sign(again), 'replay', again.id);
  });

  it('a redelivery of a known task (same id, after a restart) is answered from the log and never run twice', async () => {
    const e = env({ kind: 'set-netboot', machine: 'm1', payload: { netboot: false } });
    await parts.executor.handle(sign(e));
    await parts.close();
    parts = await build();
    // The local override survives the restart (it is durable) until the central agrees with it; then the
    // central turns netboot back on. A second execution would turn it off again.
    await parts.desiredState.replace({ ...state, version: 'v2', machines: [{ ...state.machines[0], netboot: false }] });
    await parts.desiredState.replace(state); // netboot back to true in the central's copy
    expect(parts.desiredState.machineById('m1')?.netboot).toBe(true);
    await parts.executor.handle(sign(e));
    expect(parts.desiredState.machineById('m1')?.netboot).toBe(true); // not executed again
    expect(reports(e.id).at(-1)).toMatchObject({ state: 'succeeded', reason: 'duplicate-delivery' });
  });

  it('handles tasks one at a time in arrival order', async () => {
    const es = Array.from({ length: 20 }, () => env());
    await Promise.all(es.map((e) => parts.executor.handle(sign(e))));
    expect(reports().filter((r) => r.state === 'succeeded').map((r) => r.taskId)).toEqual(es.map((e) => e.id));
    expect((await rejections()).length).toBe(0);
  });
});
