import { Agent, EnvHttpProxyAgent, buildConnector, type Dispatcher } from 'undici';
import type { TLSSocket } from 'node:tls';

/** "AB:CD:…" or "abcd…" → "ABCD…". */
export function normalizeFingerprint(fp: string): string {
  return fp.replace(/:/g, '').toUpperCase();
}

export interface DispatcherOptions {
  /** PEM text of the CA that issued the server's certificate. */
  ca?: string;
  /** A SHA-256 pin of the server's leaf certificate (a BMC's self-signed certificate). */
  fingerprint256?: string;
  /** No certificate check at all. */
  insecure?: boolean;
  /** Honour HTTP_PROXY / HTTPS_PROXY / NO_PROXY (default true). */
  proxy?: boolean;
}

/**
 * A connector that trusts exactly one leaf certificate, by its SHA-256 fingerprint. The socket is handed
 * to the request only after the handshake showed the pinned certificate, so nothing (no credentials) is
 * written to a server that is not the pinned one.
 */
function pinnedConnector(fingerprint256: string): buildConnector.connector {
  const pin = normalizeFingerprint(fingerprint256);
  // No TLS session resumption: a resumed session may not show the peer's certificate again.
  const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 });
  return (opts, done) =>
    base(opts, (err, socket) => {
      if (err || !socket) return done(err ?? new Error('no socket'), null);
      const got = normalizeFingerprint((socket as TLSSocket).getPeerCertificate?.().fingerprint256 ?? '');
      if (got !== pin) {
        socket.destroy();
        return done(Object.assign(new Error(`the server's certificate (SHA-256 ${got || 'none'}) is not the pinned one`), { code: 'CERT_PIN_MISMATCH' }), null);
      }
      done(null, socket);
    });
}

/**
 * The undici dispatcher of an API client: the env proxy agent (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, the
 * lower-case forms too) trusting `ca`, or — for a pinned or unchecked certificate, always a device on a
 * local network — a direct agent. Timeouts are the client's (one budget per request), not undici's.
 */
export function buildDispatcher(o: DispatcherOptions): Dispatcher {
  const timeouts = { headersTimeout: 0, bodyTimeout: 0, connectTimeout: 10_000 };
  if (o.fingerprint256) return new Agent({ ...timeouts, connect: pinnedConnector(o.fingerprint256) });
  const tls = o.insecure ? { rejectUnauthorized: false } : o.ca ? { ca: o.ca } : {};
  if (o.proxy === false || o.insecure) return new Agent({ ...timeouts, connect: tls });
  return new EnvHttpProxyAgent({ ...timeouts, connect: tls, requestTls: tls });
}
