import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { COLLECTIONS } from '../inventory/collections.js';
import { FileStore } from '../store/file-store.js';
import { AdminTokenFile } from './admin-token.js';
import { TOKENS, TokenService } from './tokens.js';

let dir: string;
let store: FileStore;
let tokens: TokenService;
let file: AdminTokenFile;
const tokenFile = () => join(dir, 'admin.token');
const inFile = () => readFileSync(tokenFile(), 'utf8').trim();

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
    const r = await file.rotate();
    expect(inFile()).toBe(r.token);
    expect(r.token).not.toBe(initial);
    expect(tokens.authenticate(initial)).toEqual({ ok: false, reason: 'revoked' });
    expect(tokens.authenticate(r.token)).toMatchObject({ ok: true, token: { role: 'admin' } });
    expect(r.revoked?.id).toBe(initial.split('_')[1]);
    expect(existsSync(tokenFile() + '.next')).toBe(false);
    // Rotations in parallel run one after another: only the last token is valid, and it is in the file.
    const [a, b] = await Promise.all([file.rotate(), file.rotate()]);
    expect(tokens.authenticate(r.token).ok).toBe(false);
    expect(tokens.authenticate(a.token).ok).toBe(false);
    expect(tokens.authenticate(b.token).ok).toBe(true);
    expect(inFile()).toBe(b.token);
  });

  it('a failed commit changes nothing: the old token stays valid and in the file', async () => {
    const initial = (await file.ensureInitial())!;
    const countBefore = store.count(TOKENS);
    await store.close(); // every write now fails
    await expect(file.rotate()).rejects.toThrow();
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
