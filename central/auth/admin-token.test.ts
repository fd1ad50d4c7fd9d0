import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { ALL_COLLECTIONS as COLLECTIONS } from '../all-collections.test-support.js';
import { FileStore } from '../store/file-store.js';
import { AdminTokenConflictError, AdminTokenFile } from './admin-token.js';
import { TOKENS, TokenService } from './tokens.js';

let dir: string;
let store: FileStore;
let tokens: TokenService;
let file: AdminTokenFile;
const tokenFile = () => join(dir, 'admin.token');
const inFile = () => readFileSync(tokenFile(), 'utf8').trim();
const idOf = (token: string) => token.split('_')[1];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'admin-token-test-'));
  store = await FileStore.open({ dir, collections: COLLECTIONS });
  tokens = new TokenService(store);
  file = new AdminTokenFile(dir, store, tokens, silentLogger);
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('AdminTokenFile', () => {
  it('creates the initial admin token once (0600, no expiry) and never again', async () => {
    const initial = await file.ensureInitial();
    expect(initial).toBe(inFile());
    expect(statSync(tokenFile()).mode & 0o777).toBe(0o600);
    expect(tokens.authenticate(initial!)).toMatchObject({ ok: true, token: { role: 'admin', name: 'initial admin' } });
    expect(tokens.get(initial!.split('_')[1])!.expiresAt).toBeUndefined();
    expect(await file.ensureInitial()).toBeNull();
  });

  it('rotate revokes the token in the file and writes a new admin token there', async () => {
    const initial = (await file.ensureInitial())!;
    const r = await file.rotate(idOf(initial));
    expect(inFile()).toBe(r.token);
    expect(r.token).not.toBe(initial);
    expect(tokens.authenticate(initial)).toEqual({ ok: false, reason: 'revoked' });
    expect(tokens.authenticate(r.token)).toMatchObject({ ok: true, token: { role: 'admin' } });
    expect(r.revoked?.id).toBe(initial.split('_')[1]);
    expect(existsSync(tokenFile() + '.next')).toBe(false);
    // Rotations in parallel run one after another: only the last token is valid, and it is in the file.
    // Two rotations at once naming the same token: one wins, the other is refused (compare-and-swap).
    const [a, b] = await Promise.allSettled([file.rotate(idOf(r.token)), file.rotate(idOf(r.token))]);
    expect(a.status).toBe('fulfilled');
    expect(b).toMatchObject({ status: 'rejected', reason: expect.any(AdminTokenConflictError) });
    const winner = (a as PromiseFulfilledResult<{ token: string }>).value.token;
    expect(tokens.authenticate(r.token).ok).toBe(false);
    expect(tokens.authenticate(winner).ok).toBe(true);
    expect(inFile()).toBe(winner);
    expect(existsSync(tokenFile() + '.next')).toBe(false);
  });

  it('refuses to rotate when the file holds another token than the caller named; nothing changes', async () => {
    const initial = (await file.ensureInitial())!;
    const count = store.count(TOKENS);
    await expect(file.rotate('0123456789abcdef')).rejects.toThrow(AdminTokenConflictError);
    await expect(file.rotate(null)).rejects.toThrow(/holds token/);
    expect(inFile()).toBe(initial);
    expect(store.count(TOKENS)).toBe(count);
    expect(tokens.authenticate(initial).ok).toBe(true);
    // With no file at all, null is the right expectation.
    rmSync(tokenFile());
    const r = await file.rotate(null);
    expect(inFile()).toBe(r.token);
    expect(r.revoked).toBeNull();
  });

  it('a failed commit changes nothing: the old token stays valid and in the file', async () => {
    const initial = (await file.ensureInitial())!;
    const countBefore = store.count(TOKENS);
    await store.close(); // every write now fails
    await expect(file.rotate(idOf(initial))).rejects.toThrow();
    expect(inFile()).toBe(initial);
    expect(existsSync(tokenFile() + '.next')).toBe(false);
    store = await FileStore.open({ dir, collections: COLLECTIONS });
    tokens = new TokenService(store);
    expect(store.count(TOKENS)).toBe(countBefore);
    expect(tokens.authenticate(initial).ok).toBe(true);
  });

  it('settles a rotation a crash interrupted: a valid pending token replaces the file, an unknown one is dropped', async () => {
    const initial = (await file.ensureInitial())!;
    // Crash after the commit, before the rename: the file holds a revoked token, the pending file the new one.
    const fresh = tokens.draft({ role: 'admin' });
    await store.commit([{ type: 'put', collection: TOKENS, doc: fresh.doc }]);
    writeFileSync(tokenFile() + '.next', fresh.token + '\n');
    file.settlePending();
    expect(inFile()).toBe(fresh.token);
    expect(existsSync(tokenFile() + '.next')).toBe(false);
    // Crash before the commit: the pending token was never stored; the file keeps its token.
    writeFileSync(tokenFile() + '.next', tokens.draft({ role: 'admin' }).token + '\n');
    file.settlePending();
    expect(inFile()).toBe(fresh.token);
    expect(existsSync(tokenFile() + '.next')).toBe(false);
    expect(initial).not.toBe(fresh.token);
  });
});
