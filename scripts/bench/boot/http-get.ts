import { Agent, get } from 'node:http';

export interface HttpGetResult {
  bytes: number;
  status: number;
  length: number;
  /** The Retry-After header in seconds, when the server sent one as a number. */
  retryAfterSec?: number;
}

/**
 * One GET whose body is counted, not kept. A request on a reused keep-alive socket that the server closed
 * as idle just before (it waited past the server's keep-alive timeout: a starved client) fails with
 * ECONNRESET before any response; like Node's documentation advises for idempotent requests, that one case
 * is retried once on a new connection. `idleMs`: the socket may stay silent this long.
 */
export function httpGet(url: string, agent: Agent, idleMs = 120_000, retried = false): Promise<HttpGetResult> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = get(url, { agent }, (res) => {
      answered = true;
      let bytes = 0;
      const ra = Number(res.headers['retry-after']);
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ bytes, status: res.statusCode ?? 0, length: Number(res.headers['content-length'] ?? -1), ...(Number.isFinite(ra) && ra >= 0 ? { retryAfterSec: ra } : {}) }));
      res.on('error', reject);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (!answered && !retried && req.reusedSocket && e.code === 'ECONNRESET') resolve(httpGet(url, agent, idleMs, true));
      else reject(e);
    });
    req.setTimeout(idleMs, () => req.destroy(new Error(`timeout: ${url}`)));
  });
}
