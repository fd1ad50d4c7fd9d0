import sodium from 'libsodium-wrappers';
import { silentLogger } from '../../shared/log/logger.js';
import { createApp } from '../api/app.js';
import type { ApiDeps } from '../api/deps.js';
import { TokenService } from '../auth/tokens.js';
import { centralFeatures } from '../features.js';
import { Metrics } from '../metrics/metrics.js';
import { memoryStore } from '../all-collections.test-support.js';

/** The whole central API in process (every feature, a memory store), with a token per role. */
export async function uiTestApp() {
  await sodium.ready;
  const store = memoryStore();
  const tokens = new TokenService(store);
  const deps = {
    store,
    changes: store.changes,
    tokens,
    metrics: new Metrics(),
    logger: silentLogger,
    central: { caFingerprint: 'x', publicUrl: 'https://127.0.0.1', signingPublicKey: 'x', agentCertLifetimeMs: 86_400_000 },
    identity: { ca: { keyPem: '', certPem: '' }, signing: sodium.crypto_sign_keypair(), caFingerprint: 'x' },
    dataDir: '/nonexistent',
  } as ApiDeps;
  const app = createApp(deps, { features: centralFeatures() });
  const token = async (role: 'admin' | 'operator' | 'viewer', site?: string) => (await tokens.create({ role, name: `${role}${site ? `@${site}` : ''}`, ...(site ? { site } : {}) } as never)).token;
  return { app, store, deps, token };
}
