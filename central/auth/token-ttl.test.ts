import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { COLLECTIONS } from '../inventory/collections.js';
import { FileStore } from '../store/file-store.js';
import { DEFAULT_JOIN_TOKEN_TTL, TOKENS, TokenService, type TokenDoc } from './tokens.js';

let dir: string;
let store: FileStore;
let tokens: TokenService;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'token-ttl-test-'));
  store = await FileStore.open({ dir: join(dir, 'data'), collections: COLLECTIONS });
  tokens = new TokenService(store);
});
afterEach(async () => {
  vi.useRealTimers();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
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
