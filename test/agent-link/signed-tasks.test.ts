import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import sodium from 'libsodium-wrappers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredState } from '../../shared/protocol/desired-state.js';
import { FakeCentral } from './fake-central.js';
import { createSite, joinAgent, killAllAgents, readJsonl, removeDir, spawnAgent, spawnCentral, tempDir, waitFor, type AgentProcess, type CentralProcess } from './support.js';

/**
 * The agent's task checks, end to end against a real agent process. Tasks are injected by a fake
 * central (see fake-central.ts) that terminates TLS with the real central's server certificate: the
 * position of a relay or a man on the path. Genuine tasks are signed with the real central's
 * DIR/signing.key, forgeries with a fresh Ed25519 key.
 */
let central: CentralProcess;
let fake: FakeCentral;
let agent: AgentProcess;
let dir: string;
let state: string;
let agentId: string;
const site = 'rack-t';

const desired = (): DesiredState => ({
  version: 'fake-v1', generatedAt: new Date().toISOString(), site: { name: site, params: {} },
  machines: [{ id: 'm-1', name: 'node1', macs: ['52:54:00:aa:00:01'], bootenv: 'discovery', state: 'discovered', netboot: true, profiles: [], params: {} }],
  subnets: [], reservations: [], bootenvs: [], profiles: [], paramDefs: [], globalParams: {},
});

beforeAll(async () => {
  dir = tempDir('underlay-signed-');
  state = join(dir, 'agent');
  central = await spawnCentral();
  await createSite(central, site);
  agentId = await joinAgent(central, site, state);
  // The real central is only needed for the join (CA, signing key); the agent now talks to the fake.
  await central.stop();
  fake = new FakeCentral(central.dataDir, { agent: agentId, site }, desired());
  await fake.start();
  agent = spawnAgent(state, { central: fake.url });
  await waitFor('agent hello at the fake central', () => fake.hellos >= 1);
});
afterAll(async () => {
  await killAllAgents();
  await fake?.close();
  await central?.cleanup();
  removeDir(dir);
});

const rejectionsFile = () => readJsonl<{ reason: string; id?: string; detail: string }>(join(state, 'rejections.jsonl'));
async function expectRejected(taskId: string, reason: string) {
  const report = await waitFor(`a rejected report for ${taskId}`, () => fake.reports(taskId).find((r) => r.state === 'rejected'));
  expect(report.reason).toBe(reason);
  expect(fake.reports(taskId).some((r) => r.state === 'accepted' || r.state === 'succeeded')).toBe(false);
  const local = await waitFor(`a local rejection record for ${taskId}`, () => rejectionsFile().find((r) => r.id === taskId));
  expect(local.reason).toBe(reason);
}

describe('signed tasks: the agent verifies before it runs anything', () => {
  let seq = 10;
  let genuine: ReturnType<FakeCentral['sign']>;
  let genuineId: string;

  it('runs a genuine task (signed with the central key)', async () => {
    const env = fake.envelope(seq, { kind: 'set-netboot', machine: 'm-1', payload: { netboot: false } });
    genuineId = env.id;
    genuine = fake.sign(env);
    fake.sendTask(genuine);
    const done = await waitFor('succeeded report', () => fake.reports(env.id).find((r) => r.state === 'succeeded'));
    expect(done.output).toBe('netboot = false');
    expect(fake.reports(env.id).map((r) => r.state)).toEqual(['accepted', 'succeeded']);
  });

  it('bad-signature: a forged signature (fresh key)', async () => {
    await sodium.ready;
    const env = fake.envelope(++seq);
    fake.sendTask(fake.sign(env, sodium.crypto_sign_keypair().privateKey));
    await expectRejected(env.id, 'bad-signature');
  });

  it('bad-signature: a tampered payload under the genuine signature', async () => {
    const env = fake.envelope(++seq, { payload: { message: 'original' } });
    const s = fake.sign(env);
    const tampered = Buffer.from(Buffer.from(s.canonical, 'base64').toString('utf8').replace('original', 'tampered')).toString('base64');
    fake.sendTask({ canonical: tampered, signature: s.signature });
    await expectRejected(env.id, 'bad-signature');
  });

  it('expired', async () => {
    const env = fake.envelope(++seq, { issuedAt: new Date(Date.now() - 120_000).toISOString(), expiresAt: new Date(Date.now() - 60_000).toISOString() });
    fake.sendTask(fake.sign(env));
    await expectRejected(env.id, 'expired');
  });

  it('wrong-agent: genuine, but addressed to another agent (or another site)', async () => {
    const a = fake.envelope(++seq, { agent: '00000000-0000-4000-8000-000000000000' });
    fake.sendTask(fake.sign(a));
    await expectRejected(a.id, 'wrong-agent');
    const b = fake.envelope(++seq, { site: 'some-other-site' });
    fake.sendTask(fake.sign(b));
    await expectRejected(b.id, 'wrong-agent');
  });

  it('unknown-kind', async () => {
    const env = fake.envelope(++seq, { kind: 'wipe-disks' });
    fake.sendTask(fake.sign(env));
    await expectRejected(env.id, 'unknown-kind');
  });

  it('replay: a genuine, never-seen task with an old sequence number', async () => {
    const env = fake.envelope(3);
    fake.sendTask(fake.sign(env));
    await expectRejected(env.id, 'replay');
  });

  it('replay after an agent restart: the sequence high-water mark and the task log come back from disk', async () => {
    await agent.kill(); // kill -9: nothing flushed on the way out
    const hellos = fake.hellos;
    agent = spawnAgent(state, { central: fake.url });
    await waitFor('agent reconnected to the fake central', () => fake.hellos > hellos);
    const hello = fake.frames.filter((f) => f.type === 'hello').at(-1)!;
    expect(hello.lastSeq).toBe(10); // the highest sequence it accepted, from tasks.jsonl

    const old = fake.envelope(7);
    fake.sendTask(fake.sign(old));
    await expectRejected(old.id, 'replay');

    // The byte-identical genuine task again: recognised by id, answered from the log, not run again.
    const before = fake.reports(genuineId).length;
    fake.sendTask(genuine);
    const again = await waitFor('answer to the redelivery', () => fake.reports(genuineId).slice(before)[0]);
    expect(again).toMatchObject({ state: 'succeeded', reason: 'duplicate-delivery' });
    const log = readJsonl<{ id: string; state: string }>(join(state, 'tasks.jsonl')).filter((r) => r.id === genuineId);
    expect(log.map((r) => r.state)).toEqual(['accepted', 'succeeded']); // executed once
  });

  it('every rejection is in rejections.jsonl with its reason', async () => {
    const reasons = rejectionsFile().map((r) => r.reason).sort();
    expect(reasons).toEqual(['bad-signature', 'bad-signature', 'expired', 'replay', 'replay', 'unknown-kind', 'wrong-agent', 'wrong-agent']);
  });

  it('malformed frames from the (fake) central: the agent survives, reconnects after an oversize frame and keeps working', async () => {
    const rejectedBefore = agent.count('rejected a malformed message from the central');
    const frames: (string | Buffer)[] = [
      randomBytes(2048),
      '{"type":',
      'null',
      '[1,2,3]',
      JSON.stringify({ type: 'task', task: { canonical: 42, signature: null } }),
      JSON.stringify({ type: 'state', state: { version: 7 } }),
      JSON.stringify({ type: 'ack', ids: 'all' }),
      JSON.stringify({ type: 'welcome', v: 99 }),
      JSON.stringify({ type: 'cancel' }),
      JSON.stringify({ type: 'nonsense', x: 1 }),
      JSON.stringify({ type: 'task', task: { canonical: Buffer.from('{"v":1}').toString('base64'), signature: 'A'.repeat(88) } }),
    ];
    for (let i = 0; i < 50; i++) frames.push(randomBytes(1 + Math.floor(Math.random() * 4096)));
    for (const f of frames) fake.send(f);
    // the last frame above is a structurally valid task with a bogus signature: a bad-signature rejection without id
    await waitFor('malformed frames counted', () => agent.count('rejected a malformed message from the central') >= rejectedBefore + frames.length - 1);
    expect(agent.running).toBe(true);

    // A 10 MB frame: above the agent's 8 MB limit: it drops the link (1009) and dials again.
    const hellos = fake.hellos;
    fake.send(Buffer.alloc(10 * 1024 * 1024, 0x7b));
    await waitFor('agent reconnected after the oversize frame', () => fake.hellos > hellos);
    expect(fake.closes.some((c) => c.code === 1009)).toBe(true);
    expect(agent.running).toBe(true);

    const env = fake.envelope(50, { payload: { message: 'still alive' } });
    fake.sendTask(fake.sign(env));
    const done = await waitFor('a genuine task after the fuzzing', () => fake.reports(env.id).find((r) => r.state === 'succeeded'));
    expect(done.output).toBe('pong: still alive');
  });
});
