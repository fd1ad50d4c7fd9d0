import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from '../../shared/util/duration.js';

/** A certificate lifetime: a duration ("90d", "30s") or milliseconds; at least 10 s. */
const Lifetime = z.union([z.number(), z.string()]).transform((v, ctx) => {
  let ms: number;
  try {
    ms = typeof v === 'number' ? v : parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
  if (!(ms >= 10_000 && ms <= 10 * 365 * 86_400_000)) {
    ctx.addIssue({ code: 'custom', message: 'a certificate lifetime between 10s and 3650d' });
    return z.NEVER;
  }
  return ms;
});
export const DEFAULT_AGENT_CERT_LIFETIME = '90d';
export const DEFAULT_SERVER_CERT_LIFETIME = '397d';

export const CentralOptions = z.object({
  data: z.string().min(1).default('./data'),
  /** `postgres://…`: the PostgreSQL database central replicas share; unset: the embedded store in `data`. */
  store: z.string().optional(),
  listen: z
    .string()
    .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'HOST:PORT, e.g. 127.0.0.1:8443 or 0.0.0.0:8443')
    .default('127.0.0.1:8443'),
  publicUrl: z.url().optional(),
  /** Every replica's URL (this one's included), put in join tokens; default: the public URL when one is given. */
  replicaUrls: z.array(z.url()).max(16).optional(),
  insecureHttp: z.boolean().default(false),
  bodyLimit: z.number().int().positive().default(1024 * 1024),
  /** Lifetime of the client certificates agents get at join and renewal (they renew after 2/3 of it). */
  agentCertLifetime: Lifetime.prefault(DEFAULT_AGENT_CERT_LIFETIME),
  /** Lifetime of the central's HTTPS server certificate (renewed after 2/3 of it, without a restart). */
  serverCertLifetime: Lifetime.prefault(DEFAULT_SERVER_CERT_LIFETIME),
  /** Open connections the server accepts at once (agents' WebSockets included); more are closed at accept. */
  maxConnections: z.number().int().positive().default(4096),
  /** A client must send its request headers within this long (slowloris). */
  headersTimeoutMs: z.number().int().positive().default(20_000),
  /** …and its whole request (artifact uploads included) within this long. */
  requestTimeoutMs: z.number().int().positive().default(600_000),
});
export type CentralOptions = z.infer<typeof CentralOptions>;

export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  if (!(port >= 0 && port <= 65535)) throw new Error(`invalid port in --listen ${listen}`);
  return { host, port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** The names a server certificate must cover: the listen address, the public URL's host, localhost, 127.0.0.1. */
export function serverSans(listenHost: string, publicUrl?: string): string[] {
  const names = new Set<string>(['localhost', '127.0.0.1']);
  if (listenHost && listenHost !== '0.0.0.0' && listenHost !== '::') names.add(listenHost);
  if (publicUrl) names.add(new URL(publicUrl).hostname.replace(/^\[|\]$/g, ''));
  return [...names];
}
