import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageFullError, StorageUnavailableError } from '../../shared/fs/storage-errors.js';
import { silentLogger } from '../../shared/log/logger.js';
import { TokenService } from '../auth/tokens.js';
import { ALL_COLLECTIONS as COLLECTIONS } from '../all-collections.test-support.js';
import { Metrics } from '../metrics/metrics.js';
import { sitesFeature } from '../sites/feature.js';
import type { CentralKeys } from './deps.js';
import { FileStore } from '../store/file-store.js';
import { createApp } from './app.js';

/** How the API answers when the store cannot make a write durable. */
describe('storage errors over HTTP', () => {
  let dir: string;
  let store: FileStore;
  let app: ReturnType<typeof createApp>;
  let token: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'app-storage-'));
    store = await FileStore.open({ dir, collections: COLLECTIONS });
    const tokens = new TokenService(store);
    token = (await tokens.create({ role: 'admin' })).token;
    app = createApp({
      store,
      tokens,
      metrics: new Metrics(),
      changes: store.changes,
      logger: silentLogger,
      central: { caFingerprint: 'x', publicUrl: 'https://127.0.0.1', signingPublicKey: 'x', agentCertLifetimeMs: 86_400_000 },
      identity: {} as CentralKeys,
      dataDir: dir,
    }, { features: [sitesFeature()] });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const createSite = (name: string) =>
    app.request('/api/v1/sites', { method: 'POST', body: JSON.stringify({ name }), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });

  it('answers 507 insufficient_storage for a full disk and 503 unavailable for other I/O errors; nothing is created', async () => {
    const commit = store.commit.bind(store);
    try {
      store.commit = async () => {
        throw new StorageFullError('disk full: ENOSPC writing journal.0.jsonl', 'ENOSPC');
      };
      const full = await createSite('dc1');
      expect(full.status).toBe(507);
      expect(await full.json()).toMatchObject({ error: { code: 'insufficient_storage', message: expect.stringMatching(/disk is full.*not saved/) } });
      store.commit = async () => {
        throw new StorageUnavailableError('storage unavailable: EIO writing journal.0.jsonl', 'EIO');
      };
      const eio = await createSite('dc1');
      expect(eio.status).toBe(503);
      expect(eio.headers.get('retry-after')).toBe('10');
      expect(await eio.json()).toMatchObject({ error: { code: 'unavailable' } });
    } finally {
      store.commit = commit;
    }
    expect(store.count('sites')).toBe(0);
    expect((await createSite('dc1')).status).toBe(201);
  });

  it('shows the store health in /healthz', async () => {
    const res = await app.request('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
    const health = store.health.bind(store);
    store.health = () => ({ status: 'degraded', reason: 'disk full: ENOSPC writing journal.0.jsonl; writes are refused until space is freed' });
    try {
      expect(await (await app.request('/healthz')).json()).toMatchObject({ status: 'degraded', reason: expect.stringMatching(/^disk full/) });
    } finally {
      store.health = health;
    }
  });
});
