import sodium from 'libsodium-wrappers';
import { silentLogger } from '../shared/log/logger.js';
import type { ApiDeps } from './api/deps.js';
import { TokenService } from './auth/tokens.js';
import { centralFeatures } from './features.js';
import { Metrics } from './metrics/metrics.js';
import { MemoryStore } from './store/memory-store.js';
import type { CollectionSpec } from './store/types.js';

/** Every collection of a production central (from central/features.ts). */
export const ALL_COLLECTIONS: CollectionSpec[] = centralFeatures().flatMap((f) => f.collections ?? []);

/** A store with every collection, in memory (for unit tests that need a store, not a data directory). */
export function memoryStore(): MemoryStore {
  return new MemoryStore(ALL_COLLECTIONS);
}

/** What the API's routes get, over a memory store with every collection (an in-process central for unit tests). */
export async function memoryApiDeps(): Promise<ApiDeps & { store: MemoryStore }> {
  await sodium.ready;
  const store = memoryStore();
  return {
    store,
    changes: store.changes,
    tokens: new TokenService(store),
    metrics: new Metrics(),
    logger: silentLogger,
    central: { caFingerprint: 'x', publicUrl: 'https://127.0.0.1', signingPublicKey: 'x', agentCertLifetimeMs: 86_400_000 },
    identity: { ca: { keyPem: '', certPem: '' }, signing: sodium.crypto_sign_keypair(), caFingerprint: 'x' },
    dataDir: '/nonexistent',
  };
}
