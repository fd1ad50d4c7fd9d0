import type { Logger } from '../../shared/log/logger.js';
import type { TokenService } from '../auth/tokens.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Store } from '../store/types.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { KeyPairPem } from '../pki/ca.js';
import type { SigningKeyPair } from '../keys/signing-key.js';

/** The central's keys features may use (the server's own certificate stays with the server). */
export interface CentralKeys {
  ca: KeyPairPem;
  signing: SigningKeyPair;
  caFingerprint: string;
}

/** What route modules get: the store, auth, metrics, the change feed and a logger. */
export interface ApiDeps {
  store: Store;
  tokens: TokenService;
  metrics: Metrics;
  changes: ChangeFeed;
  logger: Logger;
  /** Facts about this central that API routes may reveal (e.g. the CA fingerprint for join tokens). */
  central: { caFingerprint: string; publicUrl: string; signingPublicKey: string; /** Lifetime of agent client certificates (join and renewal). */ agentCertLifetimeMs: number; /** The replicas' URLs put in join tokens (none: the agent is given them at join). */ joinUrls?: string[] };
  /** The central's CA and signing key: only the agent join and task features use them. */
  identity: CentralKeys;
  /** The central's data directory (for features that keep files, e.g. artifacts). */
  dataDir: string;
}
