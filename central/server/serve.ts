import type { z } from 'zod';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { createLogger, type Logger } from '../../shared/log/logger.js';
import { createApp } from '../api/app.js';
import type { ApiDeps } from '../api/deps.js';
import type { CentralFeature } from '../api/feature.js';
import { Services } from '../api/services.js';
import { TokenService } from '../auth/tokens.js';
import { ADMIN_TOKEN_FILE, AdminTokenFile } from '../auth/admin-token.js';
import { Metrics } from '../metrics/metrics.js';
import { openStore } from '../store/open-store.js';
import { centralFeatures } from '../features.js';
import { ensureIdentity, type CentralIdentity } from './identity.js';
import { ServerCertRenewer } from './server-cert-renewer.js';
import { sodiumReady } from '../secrets/seal.js';
import { CentralOptions, isLoopback, serverSans, splitHostPort } from './options.js';

/** @deprecated moved to the API kit: import it from central/api/feature.ts. */
export type { CentralFeature };

export interface RunningCentral {
  url: string;
  deps: ApiDeps;
  identity: CentralIdentity;
  server: Server;
  /** Renews the HTTPS server certificate before expiry (null with --insecure-http). */
  certRenewer: ServerCertRenewer | null;
  /** Stop accepting, finish in-flight requests and writes, release the data dir. */
  close(): Promise<void>;
}

export async function startCentral(input: Partial<z.input<typeof CentralOptions>> & { logger?: Logger; features?: CentralFeature[] }): Promise<RunningCentral> {
  const parsed = CentralOptions.safeParse(Object.fromEntries(Object.entries(input).filter(([k, v]) => v !== undefined && k !== 'logger' && k !== 'features')));
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `--${i.path.join('.').replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}: ${i.message}`).join('; '));
  const opts = parsed.data;
  const logger = input.logger ?? createLogger('central');
  // Every feature (central/features.ts) unless a test hands its own list.
  const features = input.features ?? centralFeatures();
  const { host, port } = splitHostPort(opts.listen);
  if (opts.insecureHttp && !isLoopback(host)) {
    throw new Error(`--insecure-http serves without TLS and may only bind a loopback address (got ${host}); drop it to serve HTTPS`);
  }
  await sodiumReady;
  const metrics = new Metrics();
  const store = await openStore({
    url: opts.store,
    dir: opts.data,
    collections: features.flatMap((f) => f.collections ?? []),
    logger,
    onCommit: (s, n) => {
      metrics.storeCommit.observe(s);
      metrics.storeCommitRecords.inc(n);
    },
  });
  try {
    const sans = serverSans(host, opts.publicUrl);
    const identity = await ensureIdentity(opts.data, sans, logger, opts.serverCertLifetime);
    const tokens = new TokenService(store);
    const scheme = opts.insecureHttp ? 'http' : 'https';
    const publicUrl = opts.publicUrl ?? `${scheme}://${host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host}:${port}`;
    const deps: ApiDeps = {
      store,
      tokens,
      metrics,
      changes: store.changes,
      logger,
      central: { caFingerprint: identity.caFingerprint, publicUrl, signingPublicKey: Buffer.from(identity.signing.publicKey).toString('base64'), agentCertLifetimeMs: opts.agentCertLifetime, joinUrls: opts.replicaUrls ?? (opts.publicUrl ? [opts.publicUrl] : []) },
      identity,
      dataDir: opts.data,
    };

    const adminToken = new AdminTokenFile(opts.data, store, tokens, logger);
    adminToken.settlePending();
    const initial = await adminToken.ensureInitial();
    if (initial) {
      process.stdout.write(`Initial admin token (also in ${join(opts.data, ADMIN_TOKEN_FILE)}, mode 0600; shown only once; replace it with "underlay central rotate-admin-token"):\n${initial}\n`);
    }

    const services = new Services();
    const app = createApp(deps, { bodyLimit: opts.bodyLimit, features, services });
    // Clients that trickle their headers or their request are cut off (checked every few seconds).
    const limits = { headersTimeout: opts.headersTimeoutMs, requestTimeout: opts.requestTimeoutMs, connectionsCheckingInterval: Math.min(5_000, opts.headersTimeoutMs) };
    const server = (
      opts.insecureHttp
        ? createAdaptorServer({ fetch: app.fetch, createServer: createHttpServer, serverOptions: limits })
        : createAdaptorServer({
            fetch: app.fetch,
            createServer: createHttpsServer,
            serverOptions: {
              key: identity.server.keyPem,
              // The CA rides along in the chain so a joining agent can check its fingerprint.
              cert: identity.server.certPem + identity.ca.certPem,
              ca: identity.ca.certPem,
              // Agents authenticate with client certificates issued by our CA; people and CI use bearer
              // tokens, so a client certificate is requested but not required at the TLS layer.
              requestCert: true,
              rejectUnauthorized: false,
              ...limits,
            },
          })
    ) as Server;
    const certRenewer = opts.insecureHttp
      ? null
      : new ServerCertRenewer({
          dir: opts.data,
          identity,
          sans,
          lifetimeMs: opts.serverCertLifetime,
          logger,
          install: (next) => (server as unknown as HttpsServer).setSecureContext({ key: next.keyPem, cert: next.certPem + identity.ca.certPem, ca: identity.ca.certPem }),
        });
    // Connection limits: a cap on open connections (more are closed at accept).
    server.maxConnections = opts.maxConnections;
    const stops = features.map((f) => f.attach?.({ server, deps, services, identity })).filter((s): s is () => Promise<void> | void => !!s);

    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    certRenewer?.start();
    const bound = server.address() as AddressInfo;
    const url = `${scheme}://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address === '0.0.0.0' ? '127.0.0.1' : bound.address}:${bound.port}`;
    if (!opts.publicUrl) deps.central.publicUrl = url.replace('127.0.0.1', host === '0.0.0.0' ? 'localhost' : '127.0.0.1');
    logger.info({ url, data: opts.data, caFingerprint: identity.caFingerprint }, 'central listening');

    let closing: Promise<void> | null = null;
    const close = () =>
      (closing ??= (async () => {
        certRenewer?.stop();
        for (const s of [...stops].reverse()) await s(); // a feature stops before the ones it uses
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await store.close();
        logger.info('central stopped');
      })());
    return { url, deps, identity, server, certRenewer, close };
  } catch (e) {
    await store.close();
    throw e;
  }
}
