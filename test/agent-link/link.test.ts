import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createSite, createTask, getTask, isConnected, joinAgent, killAllAgents, removeDir, spawnAgent, spawnCentral, tempDir, waitFor, type AgentProcess, type CentralProcess } from './support.js';

/**
 * The link as the central sees it: fuzzed frames from an authenticated agent connection, heartbeats
 * (a dead link is noticed and re-dialled with backoff), revocation.
 */
let central: CentralProcess;
let dir: string;
let fuzzState: string;
let realState: string;
let fuzzId: string;
let realId: string;
let real: AgentProcess;
const HEARTBEAT_MS = 1000; // UNDERLAY_HEARTBEAT_MS for the real agent: dead after 3 s

beforeAll(async () => {
  dir = tempDir('underlay-link-');
  central = await spawnCentral();
  await createSite(central, 'rack-f');
  await createSite(central, 'rack-g');
  fuzzState = join(dir, 'fuzzer');
  realState = join(dir, 'real');
  [fuzzId, realId] = await Promise.all([joinAgent(central, 'rack-f', fuzzState), joinAgent(central, 'rack-g', realState)]);
  real = spawnAgent(realState, { env: { UNDERLAY_HEARTBEAT_MS: String(HEARTBEAT_MS) } });
  await waitFor('real agent connected', () => isConnected(central, realId));
});
afterAll(async () => {
  await killAllAgents();
  if (central?.running) process.kill(central.pid, 'SIGCONT');
  await central?.cleanup();
  removeDir(dir);
});

/** A raw WebSocket to the central with an agent's identity (mutual TLS). */
function connectAs(state: string): WebSocket {
  return new WebSocket(central.url.replace('https', 'wss') + '/api/v1/agents/connect', {
    key: readFileSync(join(state, 'tls.key')),
    cert: readFileSync(join(state, 'tls.pem')),
    ca: readFileSync(join(state, 'ca.pem')),
    maxPayload: 64 * 1024 * 1024,
  });
}
const opened = (ws: WebSocket) => new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`))); });

async function realTaskSucceeds(message: string) {
  const t = await createTask(central, { site: 'rack-g', kind: 'ping', payload: { message } });
  const done = await waitFor(`task ${message} succeeded`, async () => ((await getTask(central, t.id)).state === 'succeeded' ? getTask(central, t.id) : undefined));
  expect(done.output).toBe(`pong: ${message}`);
}

describe('fuzzed frames from an authenticated agent connection', () => {
  it('random bytes, malformed JSON, wrong shapes and a 10 MB frame crash nothing', async () => {
    const other = await createTask(central, { site: 'rack-g', kind: 'ping', payload: { message: 'not yours' } });
    await waitFor('the real agent finished its task', async () => (await getTask(central, other.id)).state === 'succeeded');

    const ws = connectAs(fuzzState);
    const received: { type: string; code?: string }[] = [];
    ws.on('message', (d) => received.push(JSON.parse(d.toString())));
    await opened(ws);
    const frames: (string | Buffer)[] = [
      JSON.stringify({ type: 'report', id: 'r0', taskId: other.id, state: 'failed', at: 'x' }), // before hello
      randomBytes(4096),
      '{"type":"hello"',
      'null', '0', '""', '[]', '{}',
      JSON.stringify({ type: 'hello', v: 999, agentVersion: 'x', stateVersion: null, lastSeq: 0 }),
      JSON.stringify({ type: 'report', id: 'x'.repeat(10_000), taskId: 't', state: 'succeeded', at: 'now' }),
      JSON.stringify({ type: '__proto__' }),
      JSON.stringify({ type: 'event', id: 'e', kind: 'k' }),
    ];
    for (let i = 0; i < 100; i++) frames.push(randomBytes(1 + Math.floor(Math.random() * 8192)));
    for (const f of frames) ws.send(f);
    const malformedExpected = frames.length - 1; // all but the first (well-formed, but before hello)
    await waitFor('an error answer for each malformed frame', () => received.filter((m) => m.type === 'error' && m.code === 'malformed').length >= malformedExpected);
    expect(received.some((m) => m.type === 'error' && m.code === 'no-hello')).toBe(true);

    // After hello: a report for another agent's task is ignored (the task does not change).
    ws.send(JSON.stringify({ type: 'hello', v: 1, agentVersion: 'fuzz', stateVersion: null, lastSeq: 0 }));
    await waitFor('welcome', () => received.some((m) => m.type === 'welcome'));
    ws.send(JSON.stringify({ type: 'report', id: 'steal-1', taskId: other.id, state: 'failed', at: new Date().toISOString() }));
    await waitFor('ack of the foreign report', () => received.some((m) => m.type === 'ack'));
    const after = await getTask(central, other.id);
    expect(after.state).toBe('succeeded');
    expect(after.history.some((h) => h.reportId === 'steal-1')).toBe(false);

    // 10 MB: above the central's 8 MB frame limit: that connection is closed (1009), nothing else.
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(Buffer.alloc(10 * 1024 * 1024, 0x20));
    expect(await closed).toBe(1009);

    expect(central.running).toBe(true);
    expect((await central.request('GET', '/healthz')).status).toBe(200);
    expect(await isConnected(central, realId)).toBe(true);
    await realTaskSucceeds('after the fuzzing');
    expect(await isConnected(central, fuzzId)).toBe(false);
  });
});

describe('heartbeats', () => {
  it('a dead link (the central SIGSTOPped) is detected within the dead-after time and re-dialled with backoff when the central returns', async () => {
    const readyBefore = real.count('link ready');
    const deadBefore = real.count(/link is dead/);
    const stoppedAt = Date.now();
    process.kill(central.pid, 'SIGSTOP');
    let resumed = false;
    try {
      const dead = await real.waitLog(/link is dead/, deadBefore + 1, 60_000);
      const detectedAfter = dead.time - stoppedAt;
      expect(dead.deadAfterMs).toBe(3 * HEARTBEAT_MS);
      expect(detectedAfter).toBeGreaterThanOrEqual(3 * HEARTBEAT_MS - 1000);
      expect(detectedAfter).toBeLessThan(30_000);
      // it keeps dialling while the central is frozen (handshakes time out, backoff between attempts)
      await real.waitLog('link closed', real.count('link closed') + 1, 60_000);
      process.kill(central.pid, 'SIGCONT');
      resumed = true;
    } finally {
      if (!resumed) process.kill(central.pid, 'SIGCONT');
    }
    await real.waitLog('link ready', readyBefore + 1, 90_000);
    await waitFor('connected again', () => isConnected(central, realId));
    await realTaskSucceeds('after the heartbeat test');
  });
});

describe('revocation', () => {
  it('a revoked agent is refused: its link is closed and reconnects get 403', async () => {
    const closedBefore = real.count('link closed');
    const r = await central.request('POST', `/api/v1/agents/${realId}/revoke`);
    expect(r.status).toBe(200);
    expect(r.json.revokedAt).toBeDefined();
    const closed = await real.waitLog('link closed', closedBefore + 1);
    expect(closed.code).toBe(4003);
    // the agent keeps retrying (with backoff) and is refused every time
    const refused = await real.waitLog('the central refused the agent connection', 2, 90_000);
    expect(refused.status).toBe(403);
    expect(String(refused.reason)).toMatch(/revoked/);
    expect(await isConnected(central, realId)).toBe(false);
    // a raw connection with its certificate: 403 too
    const ws = connectAs(realState);
    await expect(opened(ws)).rejects.toThrow(/HTTP 403/);
    ws.terminate();
    // tasks for its site are refused at creation (no unrevoked agent)
    expect((await central.request('POST', '/api/v1/tasks', { body: { site: 'rack-g', kind: 'ping' } })).status).toBe(409);
    expect(real.running).toBe(true);
  });
});
