import sodium from 'libsodium-wrappers';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical.js';
import { checkEnvelope, openTask, signTask, type TaskEnvelope } from './envelope.js';

let central: { publicKey: Uint8Array; privateKey: Uint8Array };
let other: { publicKey: Uint8Array; privateKey: Uint8Array };
beforeAll(async () => {
  await sodium.ready;
  central = sodium.crypto_sign_keypair();
  other = sodium.crypto_sign_keypair();
});

const me = { agent: 'agent-1', site: 'rack-a' };
function envelope(over: Partial<TaskEnvelope> = {}): TaskEnvelope {
  const now = Date.now();
  return {
    v: 1,
    id: 'task-1',
    site: 'rack-a',
    agent: 'agent-1',
    seq: 7,
    kind: 'ping',
    machine: null,
    payload: { message: 'hi ✓' },
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 60_000).toISOString(),
    ...over,
  };
}
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('signTask / openTask', () => {
  it('signs the canonical bytes; openTask verifies and returns the envelope', async () => {
    const env = envelope();
    const signed = await signTask(env, central.privateKey);
    expect(Buffer.from(signed.canonical, 'base64').toString('utf8')).toBe(canonicalJson(env));
    expect(Buffer.from(signed.signature, 'base64')).toHaveLength(64);
    const opened = await openTask(signed, central.publicKey);
    expect(opened).toEqual({ ok: true, envelope: env });
  });

  it('bad-signature: signed with another key (a forgery), reporting the unverified id', async () => {
    const signed = signTask(envelope({ id: 'forged-1' }), other.privateKey);
    const r = await openTask(signed, central.publicKey);
    expect(r).toMatchObject({ ok: false, reason: 'bad-signature', id: 'forged-1' });
  });

  it('bad-signature: a tampered payload under a genuine signature', async () => {
    const signed = signTask(envelope({ kind: 'set-netboot', machine: 'm1', payload: { netboot: false } }), central.privateKey);
    const tampered = Buffer.from(signed.canonical, 'base64').toString('utf8').replace('"netboot":false', '"netboot":true');
    const r = await openTask({ canonical: b64(tampered), signature: signed.signature }, central.publicKey);
    expect(r).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('bad-signature: one flipped signature bit, or a signature of the wrong length', async () => {
    const signed = signTask(envelope(), central.privateKey);
    const sig = Buffer.from(signed.signature, 'base64');
    sig[10] ^= 1;
    expect(await openTask({ ...signed, signature: sig.toString('base64') }, central.publicKey)).toMatchObject({ ok: false, reason: 'bad-signature' });
    // 88 base64 chars that decode to 65 bytes? not possible; 63 bytes with padding is 84 — pad the
    // string to 88 with a bogus tail instead: it decodes to a different length.
    const short = Buffer.alloc(63, 1).toString('base64');
    expect(await openTask({ ...signed, signature: short.padEnd(88, 'A') }, central.publicKey)).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('malformed: not the {canonical, signature} wire shape', async () => {
    for (const bad of [null, 'x', { canonical: 'abc' }, { canonical: 'abc', signature: 'short' }, { canonical: '', signature: 'A'.repeat(88) }, { canonical: 'a', signature: 'A'.repeat(88), extra: 1 }]) {
      expect(await openTask(bad, central.publicKey)).toMatchObject({ ok: false, reason: 'malformed' });
    }
  });

  it('malformed: genuinely signed bytes that are not JSON, or not an envelope', async () => {
    const sign = (text: string) => ({ canonical: b64(text), signature: Buffer.from(sodium.crypto_sign_detached(Buffer.from(text), central.privateKey)).toString('base64') });
    expect(await openTask(sign('{not json'), central.publicKey)).toMatchObject({ ok: false, reason: 'malformed', detail: /not JSON/ });
    const wrongShape = await openTask(sign(canonicalJson({ ...envelope(), v: 2 })), central.publicKey);
    expect(wrongShape).toMatchObject({ ok: false, reason: 'malformed', id: 'task-1' });
    const extra = await openTask(sign(canonicalJson({ ...envelope(), sneaky: true })), central.publicKey);
    expect(extra).toMatchObject({ ok: false, reason: 'malformed' });
    const negSeq = await openTask(sign(canonicalJson({ ...envelope(), seq: 0 })), central.publicKey);
    expect(negSeq).toMatchObject({ ok: false, reason: 'malformed', detail: /seq/ });
  });

  it('parses the verified bytes, never another copy (a second unsigned field is ignored)', async () => {
    const signed = signTask(envelope(), central.privateKey);
    const r = await openTask({ ...signed, envelope: envelope({ agent: 'evil' }) } as never, central.publicKey);
    // the strict wire schema refuses extra members outright
    expect(r).toMatchObject({ ok: false, reason: 'malformed' });
  });
});

describe('checkEnvelope', () => {
  it('accepts a task addressed to me that has not expired', () => {
    expect(checkEnvelope(envelope(), me)).toEqual({ ok: true });
  });
  it('wrong-agent: another agent id, or the right id at another site', () => {
    expect(checkEnvelope(envelope({ agent: 'agent-2' }), me)).toMatchObject({ ok: false, reason: 'wrong-agent' });
    expect(checkEnvelope(envelope({ site: 'rack-b' }), me)).toMatchObject({ ok: false, reason: 'wrong-agent' });
  });
  it('expired: at or after expiresAt, or an unparseable expiry', () => {
    const env = envelope();
    const exp = Date.parse(env.expiresAt);
    expect(checkEnvelope(env, me, exp - 1)).toEqual({ ok: true });
    expect(checkEnvelope(env, me, exp)).toMatchObject({ ok: false, reason: 'expired' });
    expect(checkEnvelope(envelope({ expiresAt: 'tomorrow-ish' }), me)).toMatchObject({ ok: false, reason: 'expired' });
  });
  it('checks the addressee before the expiry', () => {
    expect(checkEnvelope(envelope({ agent: 'x', expiresAt: new Date(0).toISOString() }), me)).toMatchObject({ reason: 'wrong-agent' });
  });
});
