import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileStore } from '../store/file-store.js';
import { ALL_COLLECTIONS as COLLECTIONS } from '../all-collections.test-support.js';
import { DEFAULT_JOIN_TOKEN_TTL, TOKENS, TokenService, type TokenDoc } from './tokens.js';
import { allows } from './permissions.js';

let dir: string;
let store: FileStore;
let tokens: TokenService;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tokens-test-'));
  store = await FileStore.open({ dir: join(dir, 'data'), collections: COLLECTIONS });
  tokens = new TokenService(store);
});
afterEach(async () => {
  vi.useRealTimers();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('TokenService', () => {
  it('authenticates a created token and stores only its hash', async () => {
    const { doc, token } = await tokens.create({ role: 'operator', name: 'ci' });
    const r = tokens.authenticate(token);
    expect(r).toMatchObject({ ok: true, token: { id: doc.id, role: 'operator' } });
    const stored = store.get<TokenDoc>(TOKENS, doc.id)!;
    expect(JSON.stringify(stored)).not.toContain(token.split('_')[2]);
    const view = tokens.view(stored);
    expect(view).not.toHaveProperty('hash');
    expect(view.lastUsedAt).toEqual(expect.any(String));
  });

  it('tells missing, malformed and unknown tokens apart', async () => {
    const { token } = await tokens.create({ role: 'viewer' });
    expect(tokens.authenticate(undefined)).toEqual({ ok: false, reason: 'missing' });
    expect(tokens.authenticate('')).toEqual({ ok: false, reason: 'missing' });
    expect(tokens.authenticate('Bearer x')).toEqual({ ok: false, reason: 'malformed' });
    const [, id] = token.split('_');
    expect(tokens.authenticate(`ul_${id}_${'A'.repeat(43)}`)).toEqual({ ok: false, reason: 'unknown' }); // right id, wrong secret
    expect(tokens.authenticate(`ul_${'0'.repeat(16)}_${'A'.repeat(43)}`)).toEqual({ ok: false, reason: 'unknown' });
  });

  it('expires tokens at their TTL', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const { doc, token } = await tokens.create({ role: 'viewer', ttl: '1h' });
    expect(doc.expiresAt).toBe('2030-01-01T01:00:00.000Z');
    vi.setSystemTime(new Date('2030-01-01T00:59:59Z'));
    expect(tokens.authenticate(token).ok).toBe(true);
    vi.setSystemTime(new Date('2030-01-01T01:00:00Z'));
    expect(tokens.authenticate(token)).toEqual({ ok: false, reason: 'expired' });
    const forever = await tokens.create({ role: 'viewer' });
    vi.setSystemTime(new Date('2099-01-01T00:00:00Z'));
    expect(tokens.authenticate(forever.token).ok).toBe(true);
  });

  it('revokes tokens durably; revoking twice keeps the first time', async () => {
    const { doc, token } = await tokens.create({ role: 'admin' });
    const other = await tokens.create({ role: 'admin' });
    const revoked = await tokens.revoke(doc.id);
    expect(revoked?.revokedAt).toEqual(expect.any(String));
    expect(tokens.authenticate(token)).toEqual({ ok: false, reason: 'revoked' });
    expect(tokens.authenticate(other.token).ok).toBe(true);
    expect((await tokens.revoke(doc.id))?.revokedAt).toBe(revoked!.revokedAt);
    expect(await tokens.revoke('nope')).toBeUndefined();

    await store.close();
    store = await FileStore.open({ dir: join(dir, 'data'), collections: COLLECTIONS });
    tokens = new TokenService(store);
    expect(tokens.authenticate(token)).toEqual({ ok: false, reason: 'revoked' });
    expect(tokens.authenticate(other.token).ok).toBe(true);
  });

  it('lets a one-time token be consumed once; agent-join tokens are one-time by default', async () => {
    const { doc, token } = await tokens.create({ role: 'agent-join', site: 'dc1' });
    expect(doc.oneTime).toBe(true);
    expect(tokens.authenticate(token).ok).toBe(true);
    const results = await Promise.all([tokens.consume(doc.id), tokens.consume(doc.id)]);
    expect(results.filter(Boolean)).toHaveLength(1); // two concurrent uses: exactly one wins
    expect(await tokens.consume(doc.id)).toBe(false);
    expect(tokens.authenticate(token)).toEqual({ ok: false, reason: 'used' });
    expect(await tokens.consume('nope')).toBe(false);

    const reusable = await tokens.create({ role: 'viewer' });
    expect(reusable.doc.oneTime).toBe(false);
    const explicit = await tokens.create({ role: 'viewer', oneTime: true });
    expect(explicit.doc.oneTime).toBe(true);
  });

  it('grants per role as documented', () => {
    expect(allows('admin', 'admin')).toBe(true);
    expect(allows('admin', 'write')).toBe(true);
    expect(allows('admin', 'join')).toBe(false);
    expect(allows('operator', 'write')).toBe(true);
    expect(allows('operator', 'admin')).toBe(false);
    expect(allows('viewer', 'read')).toBe(true);
    expect(allows('viewer', 'write')).toBe(false);
    expect(allows('agent-join', 'join')).toBe(true);
    expect(allows('agent-join', 'read')).toBe(false);
  });
});

describe('token expiry defaults', () => {
  it('an agent-join token expires after 24 h by default, and is refused after that', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2030-01-01T00:00:00Z') });
    expect(DEFAULT_JOIN_TOKEN_TTL).toBe('24h');
    const { doc, token } = await tokens.create({ role: 'agent-join', site: 'dc1' });
    expect(doc.expiresAt).toBe('2030-01-02T00:00:00.000Z');
    expect(store.get<TokenDoc>(TOKENS, doc.id)!.expiresAt).toBe('2030-01-02T00:00:00.000Z');
    vi.setSystemTime(new Date('2030-01-01T23:59:59Z'));
    expect(tokens.authenticate(token).ok).toBe(true);
    vi.setSystemTime(new Date('2030-01-02T00:00:00Z'));
    expect(tokens.authenticate(token)).toEqual({ ok: false, reason: 'expired' });
  });

  it('--ttl overrides the default; "never" is the explicit way to a join token without expiry', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2030-01-01T00:00:00Z') });
    expect((await tokens.create({ role: 'agent-join', site: 'dc1', ttl: '10m' })).doc.expiresAt).toBe('2030-01-01T00:10:00.000Z');
    const never = await tokens.create({ role: 'agent-join', site: 'dc1', ttl: 'never' });
    expect(never.doc.expiresAt).toBeUndefined();
    vi.setSystemTime(new Date('2040-01-01T00:00:00Z'));
    expect(tokens.authenticate(never.token).ok).toBe(true);
  });

  it('other roles keep no expiry unless asked (API tokens for CI and Ansible)', async () => {
    for (const role of ['admin', 'operator', 'viewer'] as const) expect((await tokens.create({ role })).doc.expiresAt).toBeUndefined();
    expect((await tokens.draft({ role: 'viewer', ttl: '1h' })).doc.expiresAt).toBeDefined();
  });

  it('draft does not store the token until committed', () => {
    const { doc, token } = tokens.draft({ role: 'admin' });
    expect(store.get(TOKENS, doc.id)).toBeUndefined();
    expect(tokens.authenticate(token)).toEqual({ ok: false, reason: 'unknown' });
  });
});
