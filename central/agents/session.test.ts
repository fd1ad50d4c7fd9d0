import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import type { DesiredState } from '../../shared/protocol/desired-state.js';
import type { TaskDoc, TaskService } from '../tasks/service.js';
import type { AgentDoc } from './collections.js';
import { AgentSession } from './session.js';

class FakeWs extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  sent: { type: string; [k: string]: unknown }[] = [];
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
    this.emit('close');
  }
  terminate() {
    this.close();
  }
}

const agent = { id: 'a1', site: 's1' } as AgentDoc;
const state = { version: 'v1', site: { name: 's1', params: {} }, machines: [] } as unknown as DesiredState;
const task = (seq: number, st: TaskDoc['state'] = 'queued') => ({ id: `t${seq}`, seq, state: st, signed: { canonical: `c${seq}`, signature: 's'.repeat(88) } }) as unknown as TaskDoc;
const tick = () => new Promise((r) => setImmediate(r));

/** A socket that records each write (one entry per write, its chunks in order), as the upgraded TLS socket takes frames. */
function recordWrites() {
  const writes: string[][] = [];
  const socket = new Writable({
    writev(chunks, cb) {
      writes.push(chunks.map((c) => String(c.chunk)));
      cb();
    },
    write(chunk, _enc, cb) {
      writes.push([String(chunk)]);
      cb();
    },
  });
  return { writes, socket };
}

function setup(pendingFor: () => Promise<TaskDoc[]>, ackLingerMs = 0) {
  const ws = new FakeWs();
  const delivered: string[] = [];
  const reports: string[] = [];
  const tasks = {
    pendingFor,
    markDeliveredMany: async (ts: TaskDoc[]) => void delivered.push(...ts.map((t) => t.id)),
    applyReports: async (_a: string, rs: { id: string }[]) => void reports.push(...rs.map((r) => r.id)),
  } as unknown as TaskService;
  const session = new AgentSession(agent, ws as never, { tasks, desiredState: () => state, onEvent: async () => undefined, renewCert: async () => { throw new Error('unused'); }, onClose: () => undefined, logger: silentLogger, ackLingerMs });
  const hello = (features?: string[]) => ws.emit('message', JSON.stringify({ type: 'hello', v: 1, agentVersion: 't', stateVersion: null, lastSeq: 0, ...(features ? { features } : {}) }), false);
  return { ws, session, delivered, reports, hello };
}

describe('AgentSession', () => {
  it('rejects a frame nested past the depth limit before parsing it, and keeps the session', async () => {
    const { ws, session, hello } = setup(async () => []);
    hello();
    await tick();
    const deep = '{"type":"event","id":"e","kind":"discovery","at":"x","data":' + '['.repeat(5000) + ']'.repeat(5000) + '}';
    ws.emit('message', deep, false);
    await tick();
    expect(session.rejected).toBe(1);
    expect(ws.sent.at(-1)).toMatchObject({ type: 'error', code: 'malformed', message: expect.stringMatching(/deeper than 64/) });
    ws.emit('message', JSON.stringify({ type: 'ping', t: 1 }), false);
    await tick();
    expect(ws.sent.at(-1)).toMatchObject({ type: 'pong', t: 1 });
  });

  it('a task created while the backlog is read at hello is neither lost nor sent ahead of older ones', async () => {
    let release!: (ts: TaskDoc[]) => void;
    const { ws, session, delivered, hello } = setup(() => new Promise((r) => (release = r)));
    hello();
    await tick();
    expect(session.state).toBe('syncing');
    await session.deliver(task(3)); // live delivery, racing the backlog
    expect(ws.sent.filter((m) => m.type === 'task')).toHaveLength(0);
    release([task(1), task(2, 'delivered')]);
    await tick();
    await tick();
    expect(ws.sent.map((m) => m.type)).toEqual(['welcome', 'state', 'task', 'task', 'task']);
    expect(ws.sent.filter((m) => m.type === 'task').map((m) => (m.task as { canonical: string }).canonical)).toEqual(['c1', 'c2', 'c3']);
    expect(delivered).toEqual(['t1', 't2', 't3']);
    // afterwards live tasks go out at the end of the turn
    await session.deliver(task(4));
    await tick();
    expect(ws.sent.at(-1)).toMatchObject({ type: 'task', task: { canonical: 'c4' } });
  });

  it("with the agent's batch feature, tasks due in one turn go out as one tasks frame, in order, split by a cancel", async () => {
    const { ws, session, delivered, hello } = setup(async () => []);
    hello(['batch', 'some-future-feature']);
    await tick();
    expect(ws.sent[0]).toMatchObject({ type: 'welcome', features: ['batch', 'cert-renew'] });
    for (const t of [task(1), task(2), task(3, 'cancelled'), task(4)]) await session.deliver(t);
    expect(ws.sent.filter((m) => m.type === 'tasks' || m.type === 'task')).toHaveLength(0);
    await tick();
    expect(ws.sent.slice(-3)).toEqual([
      { type: 'tasks', tasks: [task(1).signed, task(2).signed] },
      { type: 'cancel', taskId: 't3' },
      { type: 'task', task: task(4).signed },
    ]);
    expect(delivered).toEqual(['t1', 't2', 't4']);
  });

  it('without the batch feature (an older agent) every task goes in its own task frame', async () => {
    const { ws, session, hello } = setup(async () => []);
    hello();
    await tick();
    for (const t of [task(1), task(2)]) await session.deliver(t);
    await tick();
    expect(ws.sent.slice(-2)).toEqual([{ type: 'task', task: task(1).signed }, { type: 'task', task: task(2).signed }]);
  });

  it('a cancelled task is sent as cancel, never as a task', async () => {
    const { ws, session, hello } = setup(async () => []);
    hello();
    await tick();
    await session.deliver(task(5, 'cancelled'));
    await tick();
    expect(ws.sent.at(-1)).toEqual({ type: 'cancel', taskId: 't5' });
  });

  it('acks reports recorded in the same turn in one frame; refuses reports before hello', async () => {
    const { ws, reports, hello } = setup(async () => []);
    const rep = (id: string) => JSON.stringify({ type: 'report', id, taskId: 't1', state: 'succeeded', at: 'now' });
    ws.emit('message', rep('early'), false);
    await tick();
    expect(reports).toEqual([]);
    expect(ws.sent.at(-1)).toMatchObject({ type: 'error', code: 'no-hello' });
    hello();
    await tick();
    for (const id of ['r1', 'r2', 'r3']) ws.emit('message', rep(id), false);
    await tick();
    await tick();
    expect(reports).toEqual(['r1', 'r2', 'r3']);
    expect(ws.sent.filter((m) => m.type === 'ack')).toEqual([{ type: 'ack', ids: ['r1', 'r2', 'r3'] }]);
    // a reports frame is applied as its reports one by one, in order, and acked the same way
    ws.emit('message', JSON.stringify({ type: 'reports', items: ['r4', 'r5'].map((id) => JSON.parse(rep(id))) }), false);
    await tick();
    await tick();
    expect(reports).toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
    expect(ws.sent.filter((m) => m.type === 'ack').at(-1)).toEqual({ type: 'ack', ids: ['r4', 'r5'] });
  });

  it('holds acks for the next frame to the agent (same write), or sends them alone when the linger ends', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { writes, socket } = recordWrites();
      const ws = new FakeWs();
      ws.send = (data: string) => void socket.write(data);
      const tasks = { pendingFor: async () => [], markDeliveredMany: async () => undefined, applyReports: async () => undefined } as unknown as TaskService;
      const session = new AgentSession(agent, ws as never, { tasks, desiredState: () => state, onEvent: async () => undefined, renewCert: async () => { throw new Error('unused'); }, onClose: () => undefined, logger: silentLogger, ackLingerMs: 250 }, socket);
      ws.emit('message', JSON.stringify({ type: 'hello', v: 1, agentVersion: 't', stateVersion: null, lastSeq: 0, features: ['batch'] }), false);
      for (let i = 0; i < 3; i++) await tick();
      writes.length = 0;
      const rep = (id: string) => ({ type: 'report', id, taskId: 't1', state: 'succeeded', at: 'now' });
      ws.emit('message', JSON.stringify({ type: 'reports', items: [rep('r1'), rep('r2')] }), false);
      for (let i = 0; i < 3; i++) await tick();
      expect(writes).toEqual([]); // recorded, ack held
      await session.deliver(task(7));
      for (let i = 0; i < 3; i++) await tick();
      // the held ack leaves with the task, in one write
      expect(writes.map((w) => w.map((f) => JSON.parse(f)))).toEqual([[{ type: 'ack', ids: ['r1', 'r2'] }, { type: 'task', task: task(7).signed }]]);
      // with nothing else to send, the ack goes alone when the linger ends
      ws.emit('message', JSON.stringify({ type: 'report', ...rep('r3') }), false);
      for (let i = 0; i < 3; i++) await tick();
      expect(writes).toHaveLength(1);
      vi.advanceTimersByTime(250);
      for (let i = 0; i < 2; i++) await tick();
      expect(writes.map((w) => w.map((f) => JSON.parse(f)))[1]).toEqual([{ type: 'ack', ids: ['r3'] }]);
      // closing the link sends what is held first (those reports are recorded: no resend needed)
      ws.emit('message', JSON.stringify({ type: 'report', ...rep('r4') }), false);
      for (let i = 0; i < 3; i++) await tick();
      session.close(1001, 'central shutting down');
      for (let i = 0; i < 2; i++) await tick();
      expect(writes.map((w) => w.map((f) => JSON.parse(f)))[2]).toEqual([{ type: 'ack', ids: ['r4'] }]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('frames sent in one turn (acks of one commit, tasks of another) leave the socket in one write', async () => {
    const { writes, socket } = recordWrites();
    const ws = new FakeWs();
    ws.send = (data: string) => void socket.write(data); // as ws does: frames written to the upgraded socket
    const tasks = { pendingFor: async () => [], markDeliveredMany: async () => undefined, applyReports: async () => undefined } as unknown as TaskService;
    new AgentSession(agent, ws as never, { tasks, desiredState: () => state, onEvent: async () => undefined, renewCert: async () => { throw new Error('unused'); }, onClose: () => undefined, logger: silentLogger }, socket);
    ws.emit('message', JSON.stringify({ type: 'hello', v: 1, agentVersion: 't', stateVersion: null, lastSeq: 0, features: ['batch'] }), false);
    await tick();
    await tick();
    await tick();
    // welcome and state went out in the turn of the hello: one write of two frames
    expect(writes.map((w) => w.map((f) => JSON.parse(f).type))).toEqual([['welcome', 'state']]);
    ws.emit('message', JSON.stringify({ type: 'ping', t: 1 }), false);
    ws.emit('message', JSON.stringify({ type: 'ping', t: 2 }), false);
    await tick();
    await tick();
    expect(writes).toHaveLength(2);
    expect(writes[1]!.map((f) => JSON.parse(f))).toEqual([{ type: 'pong', t: 1 }, { type: 'pong', t: 2 }]);
  });

  it('answers a malformed frame with an error and counts it; a second hello changes nothing', async () => {
    const { ws, session, hello } = setup(async () => [task(1)]);
    ws.emit('message', Buffer.from([0xde, 0xad]), true);
    await tick();
    expect(session.rejected).toBe(1);
    expect(ws.sent.at(-1)).toMatchObject({ type: 'error', code: 'malformed' });
    hello();
    await tick();
    await tick();
    const n = ws.sent.length;
    expect(ws.sent.filter((m) => m.type === 'task')).toHaveLength(1);
    hello();
    await tick();
    await tick();
    expect(ws.sent.length).toBe(n); // the backlog is not sent twice
  });
});
