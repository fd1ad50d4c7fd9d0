import { describe, expect, it } from 'vitest';
import { AgentToCentral, CentralToAgent, FEATURES, MAX_BATCH_ITEMS, parseMessage, PROTOCOL_VERSION } from './messages.js';
import { heartbeatSettings } from './heartbeat.js';
import { isTaskKind, TASK_KINDS } from './task-kinds.js';

const report = { type: 'report', id: 'r1', taskId: 't1', state: 'succeeded', at: new Date().toISOString() };

describe('parseMessage', () => {
  it('parses each agent → central message type, from a string or a Buffer', () => {
    const ok = [
      { type: 'hello', v: PROTOCOL_VERSION, agentVersion: '0.1.0', stateVersion: null, lastSeq: 0 },
      report,
      { type: 'event', id: 'e1', kind: 'discovery', data: { a: 1 }, at: 'now' },
      { type: 'state-request' },
      { type: 'ping', t: 1 },
      { type: 'pong', t: 1 },
    ];
    for (const m of ok) {
      expect(parseMessage(AgentToCentral, JSON.stringify(m))).toMatchObject({ ok: true, msg: { type: m.type } });
      expect(parseMessage(AgentToCentral, Buffer.from(JSON.stringify(m)))).toMatchObject({ ok: true });
    }
    // a fragmented binary frame arrives as Buffer[]
    const text = JSON.stringify(report);
    expect(parseMessage(AgentToCentral, [Buffer.from(text.slice(0, 5)), Buffer.from(text.slice(5))])).toMatchObject({ ok: true, msg: report });
    expect(parseMessage(AgentToCentral, new Uint8Array(Buffer.from(text)).buffer)).toMatchObject({ ok: true });
  });

  it('rejects an unknown type, and a type meant for the other direction', () => {
    expect(parseMessage(AgentToCentral, '{"type":"shutdown"}')).toMatchObject({ ok: false });
    expect(parseMessage(AgentToCentral, '{"type":"task","task":{}}')).toMatchObject({ ok: false });
    expect(parseMessage(CentralToAgent, JSON.stringify(report))).toMatchObject({ ok: false });
    expect(parseMessage(AgentToCentral, '{"no":"type"}')).toMatchObject({ ok: false });
  });

  it('rejects malformed frames with a reason instead of throwing', () => {
    for (const f of ['', '{', 'null', '42', '"hello"', '[]', '\u0000\u0001', Buffer.from([0xff, 0xfe, 0x00])]) {
      const r = parseMessage(AgentToCentral, f);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason.length).toBeGreaterThan(0);
    }
    expect(parseMessage(AgentToCentral, 12 as unknown)).toEqual({ ok: false, reason: 'unsupported frame type' });
    expect(parseMessage(AgentToCentral, '{')).toEqual({ ok: false, reason: 'frame is not JSON' });
  });

  it('rejects valid JSON with wrong shapes, naming the field', () => {
    const r = parseMessage(AgentToCentral, JSON.stringify({ ...report, state: 'exploded' }));
    expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/state/) });
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'hello', v: 2, agentVersion: 'x', stateVersion: null, lastSeq: 0 }))).toMatchObject({ ok: false, reason: /v/ });
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'hello', v: 1, agentVersion: 'x', stateVersion: null, lastSeq: -1 }))).toMatchObject({ ok: false, reason: /lastSeq/ });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'task', task: { canonical: 'x', signature: 'short' } }))).toMatchObject({ ok: false, reason: /signature/ });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'state', state: { version: 'v' } }))).toMatchObject({ ok: false });
  });

  it('rejects oversize fields (report output, ids, signed task bytes, ack batches)', () => {
    expect(parseMessage(AgentToCentral, JSON.stringify({ ...report, output: 'x'.repeat(1024 * 1024 + 1) }))).toMatchObject({ ok: false, reason: /output/ });
    expect(parseMessage(AgentToCentral, JSON.stringify({ ...report, id: 'i'.repeat(65) }))).toMatchObject({ ok: false, reason: /id/ });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'task', task: { canonical: 'A'.repeat(1_500_001), signature: 'A'.repeat(88) } }))).toMatchObject({ ok: false, reason: /canonical/ });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'ack', ids: Array.from({ length: 10_001 }, (_, i) => String(i)) }))).toMatchObject({ ok: false, reason: /ids/ });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'ack', ids: Array.from({ length: 10_000 }, (_, i) => String(i)) }))).toMatchObject({ ok: true });
  });
});

describe('batch messages and features', () => {
  const signed = { canonical: 'Y2Fub25pY2Fs', signature: 'A'.repeat(88) };
  it('parses reports and tasks batches, keeping item order, and validates every item', () => {
    const items = [{ ...report, id: 'r1' }, { ...report, id: 'r2', state: 'accepted' }];
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'reports', items }))).toMatchObject({ ok: true, msg: { type: 'reports', items: [{ id: 'r1' }, { id: 'r2' }] } });
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'reports', items: [items[0], { ...report, state: 'exploded' }] }))).toMatchObject({ ok: false, reason: /items\.1\.state/ });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'tasks', tasks: [signed, { ...signed, canonical: 'b3RoZXI=' }] }))).toMatchObject({ ok: true, msg: { tasks: [signed, { canonical: 'b3RoZXI=' }] } });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'tasks', tasks: [signed, { canonical: 'x', signature: 'short' }] }))).toMatchObject({ ok: false, reason: /tasks\.1\.signature/ });
  });

  it('refuses empty and oversize batches, and batches in the wrong direction', () => {
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'reports', items: [] }))).toMatchObject({ ok: false });
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'reports', items: Array.from({ length: MAX_BATCH_ITEMS + 1 }, (_, i) => ({ ...report, id: `r${i}` })) }))).toMatchObject({ ok: false, reason: /items/ });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'tasks', tasks: Array.from({ length: MAX_BATCH_ITEMS + 1 }, () => signed) }))).toMatchObject({ ok: false, reason: /tasks/ });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'reports', items: [report] }))).toMatchObject({ ok: false });
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'tasks', tasks: [signed] }))).toMatchObject({ ok: false });
  });

  it('features: absent means none (an older peer); unknown names are dropped, not an error', () => {
    const hello = { type: 'hello', v: 1, agentVersion: 'x', stateVersion: null, lastSeq: 0 };
    expect(parseMessage(AgentToCentral, JSON.stringify(hello))).toMatchObject({ ok: true, msg: { features: [] } });
    expect(parseMessage(AgentToCentral, JSON.stringify({ ...hello, features: ['teleport', 'batch'] }))).toMatchObject({ ok: true, msg: { features: ['batch'] } });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'welcome', v: 1, agent: 'a', site: 's', serverTime: 'now', features: FEATURES }))).toMatchObject({ ok: true, msg: { features: ['batch', 'cert-renew'] } });
    expect(parseMessage(AgentToCentral, JSON.stringify({ ...hello, features: 'batch' }))).toMatchObject({ ok: false, reason: /features/ });
  });
});

describe('task kinds', () => {
  it('knows the registry and nothing else (own properties only)', () => {
    expect(isTaskKind('ping')).toBe(true);
    expect(isTaskKind('rm-rf')).toBe(false);
    expect(isTaskKind('toString')).toBe(false);
    expect(isTaskKind('__proto__')).toBe(false);
    expect(TASK_KINDS['set-netboot'].payload.safeParse({ netboot: 'yes' }).success).toBe(false);
    expect(TASK_KINDS['run-script'].payload.safeParse({ scriptB64: 'not base64!' }).success).toBe(false);
  });
});

describe('heartbeatSettings', () => {
  it('defaults to 10 s / 30 s and derives dead-after as three intervals', () => {
    expect(heartbeatSettings({})).toEqual({ heartbeatMs: 10_000, deadAfterMs: 30_000 });
    expect(heartbeatSettings({ UNDERLAY_HEARTBEAT_MS: '1000' })).toEqual({ heartbeatMs: 1000, deadAfterMs: 3000 });
  });
  it('refuses nonsense', () => {
    for (const v of ['0', '-5', 'fast', '1.5', '99999999']) expect(() => heartbeatSettings({ UNDERLAY_HEARTBEAT_MS: v })).toThrow(/UNDERLAY_HEARTBEAT_MS/);
  });
});

describe('certificate renewal messages', () => {
  const csr = '-----BEGIN CERTIFICATE REQUEST-----\n' + 'A'.repeat(200) + '\n-----END CERTIFICATE REQUEST-----\n';
  const cert = '-----BEGIN CERTIFICATE-----\n' + 'A'.repeat(200) + '\n-----END CERTIFICATE-----\n';

  it('parses cert-renew (agent → central) and both answers (central → agent)', () => {
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'cert-renew', id: 'r1', csr }))).toMatchObject({ ok: true, msg: { type: 'cert-renew', id: 'r1' } });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'cert-renewed', id: 'r1', certificate: cert }))).toMatchObject({ ok: true, msg: { type: 'cert-renewed' } });
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'cert-renew-refused', id: 'r1', code: 'revoked', message: 'no' }))).toMatchObject({ ok: true, msg: { code: 'revoked' } });
  });

  it('refuses a missing or oversize CSR, an empty id, and renewal messages in the wrong direction', () => {
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'cert-renew', id: 'r1' })).ok).toBe(false);
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'cert-renew', id: 'r1', csr: 'x'.repeat(20_000) })).ok).toBe(false);
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'cert-renew', id: '', csr })).ok).toBe(false);
    expect(parseMessage(AgentToCentral, JSON.stringify({ type: 'cert-renewed', id: 'r1', certificate: cert })).ok).toBe(false);
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'cert-renew', id: 'r1', csr })).ok).toBe(false);
    expect(parseMessage(CentralToAgent, JSON.stringify({ type: 'cert-renewed', id: 'r1', certificate: 'short' })).ok).toBe(false);
  });
});
