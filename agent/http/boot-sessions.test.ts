import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BootSessions } from './boot-sessions.js';
import { ForbiddenError } from '../../shared/errors/domain-errors.js';
import { ClaimRefusedError, UnauthenticatedError } from './errors.js';

const MAC = '52:54:00:aa:bb:01';
const dir = mkdtempSync(join(tmpdir(), 'underlay-sessions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const open = async (now = () => Date.now(), limits = {}) => {
  const s = new BootSessions(join(dir, `s${++n}.jsonl`), limits, now);
  await s.open();
  return s;
};

describe('BootSessions (per-boot machine credentials)', () => {
  it('mints random 256-bit tokens that are not derived from the MAC', async () => {
    const s = await open();
    const a = await s.mint(MAC, 'm1');
    const b = await s.mint(MAC, 'm1');
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain(MAC.replace(/:/g, ''));
  });

  it('the first claim gets the session; a second claim is refused (from anywhere, explicit or URL)', async () => {
    const s = await open();
    const tok = await s.mint(MAC, 'm1');
    const first = await s.claim(tok, '198.18.0.10', 'explicit');
    expect(first.credential).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.authenticate(first.credential)).toMatchObject({ machine: 'm1', mac: MAC, remote: '198.18.0.10' });
    await expect(s.claim(tok, '198.18.0.66', 'explicit')).rejects.toBeInstanceOf(ClaimRefusedError);
    await expect(s.claim(tok, '198.18.0.66', 'url')).rejects.toBeInstanceOf(ClaimRefusedError);
    // Even the same address cannot get a second credential.
    await expect(s.claim(tok, '198.18.0.10', 'explicit')).rejects.toBeInstanceOf(ClaimRefusedError);
  });

  it('a URL client is recognised by its source address; an explicit claim from it upgrades once', async () => {
    const s = await open();
    const tok = await s.mint(MAC, 'm1');
    const first = await s.claim(tok, '198.18.0.10', 'url');
    expect(first.credential).toBeUndefined();
    expect((await s.claim(tok, '198.18.0.10', 'url')).fresh).toBe(false);
    await expect(s.claim(tok, '198.18.0.11', 'url')).rejects.toBeInstanceOf(ClaimRefusedError);
    const up = await s.claim(tok, '198.18.0.10', 'explicit');
    expect(up.session.id).toBe(first.session.id);
    expect(s.authenticate(up.credential).id).toBe(first.session.id);
    await expect(s.claim(tok, '198.18.0.10', 'explicit')).rejects.toBeInstanceOf(ClaimRefusedError);
  });

  it('refuses unknown, malformed and expired tokens; keeps only a few unclaimed tokens per MAC', async () => {
    let now = 1_000_000;
    const s = await open(() => now, { tokenTtlMs: 60_000, tokensPerMac: 2 });
    await expect(s.claim('A'.repeat(43), 'x', 'explicit')).rejects.toBeInstanceOf(ForbiddenError);
    await expect(s.claim('short', 'x', 'explicit')).rejects.toBeInstanceOf(ForbiddenError);
    const old = await s.mint(MAC, 'm1');
    const t2 = await s.mint(MAC, 'm1');
    const t3 = await s.mint(MAC, 'm1');
    await expect(s.claim(old, 'x', 'explicit')).rejects.toBeInstanceOf(ForbiddenError); // forgotten (bounded)
    now += 60_001;
    await expect(s.claim(t2, 'x', 'explicit')).rejects.toBeInstanceOf(ForbiddenError); // expired
    expect(t3).toBeTruthy();
  });

  it('a new session for the machine supersedes the previous one', async () => {
    const s = await open();
    const a = await s.claim(await s.mint(MAC, 'm1'), 'r1', 'explicit');
    const b = await s.claim(await s.mint(MAC, 'm1'), 'r2', 'explicit');
    expect(b.superseded?.id).toBe(a.session.id);
    expect(() => s.authenticate(a.credential)).toThrow(UnauthenticatedError);
    expect(s.authenticate(b.credential).id).toBe(b.session.id);
    expect(() => s.authenticate(undefined)).toThrow(UnauthenticatedError);
    expect(() => s.authenticate('nope')).toThrow(UnauthenticatedError);
  });

  it('two concurrent claims of one token: exactly one wins, the other is refused (no silent race)', async () => {
    const s = await open();
    const tok = await s.mint(MAC, 'm1');
    const [a, b] = await Promise.allSettled([s.claim(tok, 'r1', 'explicit'), s.claim(tok, 'r2', 'url')]);
    expect([a.status, b.status].sort()).toEqual(['fulfilled', 'rejected']);
    const refused = (a.status === 'rejected' ? a : b) as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(ClaimRefusedError);
  });

  it('two sessions racing for a deploy’s secrets: exactly one gets them', async () => {
    const s = await open();
    const one = (await s.claim(await s.mint(MAC, 'm1'), 'r1', 'url')).session;
    const two = (await s.claim(await s.mint(MAC, 'm1'), 'r2', 'url')).session;
    const got = await Promise.all([s.takeSecrets('m1', 0, one), s.takeSecrets('m1', 0, two)]);
    expect(got.filter(Boolean)).toHaveLength(1);
    expect(await s.takeSecrets('m1', 0, got[0] ? one : two)).toBe(true); // the holder's retry
    expect(await s.takeSecrets('m1', 1, two)).toBe(true); // re-armed: a new generation
  });

  it('survives a restart: sessions, hand-outs, the replay floor and secrets holders; only hashes on disk', async () => {
    const path = join(dir, 'restart.jsonl');
    const s1 = new BootSessions(path);
    await s1.open();
    const tok = await s1.mint(MAC, 'm1');
    const pending = await s1.mint('52:54:00:aa:bb:02', 'm2');
    const c = await s1.claim(tok, 'r1', 'explicit');
    await s1.recordHanded(c.session, 'task-1', 41);
    await s1.takeSecrets('m1', 0, c.session);
    await s1.close();
    const disk = readFileSync(path, 'utf8');
    expect(disk).not.toContain(tok);
    expect(disk).not.toContain(pending);
    expect(disk).not.toContain(c.credential!);
    const s2 = new BootSessions(path);
    await s2.open();
    const back = s2.authenticate(c.credential);
    expect(back.id).toBe(c.session.id);
    expect(s2.wasHandedTo(back, 'task-1')).toBe(true);
    expect(s2.wasHandedTo(back, 'task-2')).toBe(false);
    expect(s2.seqFloor('m1')).toBe(41);
    expect(s2.secretsHolder('m1', 0)).toBe(c.session.id);
    expect(s2.secretsHolder('m1', 1)).toBeUndefined();
    // A token minted before the restart can still be claimed (an agent restart mid-boot strands nobody).
    expect((await s2.claim(pending, 'r2', 'explicit')).credential).toBeTruthy();
    await s2.close();
  });
});
