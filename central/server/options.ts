import { isIP } from 'node:net';
import { z } from 'zod';

export const CentralOptions = z.object({
  data: z.string().min(1).default('./data'),
  listen: z
    .string()
    .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'HOST:PORT, e.g. 127.0.0.1:8443 or 0.0.0.0:8443')
    .default('127.0.0.1:8443'),
  publicUrl: z.url().optional(),
  insecureHttp: z.boolean().default(false),
  bodyLimit: z.number().int().positive().default(1024 * 1024),
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
