/** The benchmarks' HTTPS client for the central's API (a pinned CA, a bearer token, a keep-alive agent of the caller's). */
import { Agent, request } from 'node:https';

export interface Conn {
  url: string;
  ca: string;
  token: string;
}

export interface CallResult<T> {
  status: number;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: T;
}

export function call<T = any>(conn: Conn, agent: Agent, method: string, path: string, body?: unknown, token = conn.token): Promise<CallResult<T>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      conn.url + path,
      {
        method,
        agent,
        ca: conn.ca,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: T = undefined as T;
          try {
            json = JSON.parse(text) as T;
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
        res.on('error', reject);
      },
    );
    // Whether the request went out on a kept-alive connection: a reset there before any answer is the server
    // having closed it as idle or timed out (Node's documented case for retrying a request that changes state).
    req.on('error', (e) => reject(Object.assign(e, { reusedSocket: req.reusedSocket })));
    if (payload) req.write(payload);
    req.end();
  });
}

/** The connection failed before an answer came (the server reset or closed it under load): nothing was answered, the request may or may not have been handled. */
export function isConnectionFailure(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || /socket hang up/i.test((e as Error)?.message ?? '');
}

/** A connection failure on a kept-alive connection the server had closed before it read the request (see call). */
export function isStaleKeepAlive(e: unknown): boolean {
  return isConnectionFailure(e) && (e as { reusedSocket?: boolean }).reusedSocket === true;
}

/** How many calls a bench retried after a connection failure (printed with its results). */
export class RetryCount {
  n = 0;
}

/**
 * `call`, tried again (up to `attempts` times, after 50, 100, 200 … ms) when the connection fails before
 * an answer. Only for requests that are safe to repeat (reads, or writes the caller makes idempotent,
 * e.g. a 409 on a retried create by name means done); every retry is counted in `retries`.
 */
export async function callRetrying<T = any>(retries: RetryCount, conn: Conn, agent: Agent, method: string, path: string, body?: unknown, token = conn.token, attempts = 6): Promise<CallResult<T>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  for (let i = 1; ; i++) {
    try {
      return await call<T>(conn, agent, method, path, body, token);
    } catch (e) {
      if (!isConnectionFailure(e) || i >= attempts) throw e;
      retries.n++;
      await new Promise((r) => setTimeout(r, 50 * 2 ** (i - 1)));
    }
  }
}

/** The parsed body of a 2xx answer; anything else throws with the status and body. */
export async function ok<T = any>(p: Promise<CallResult<T>>, what: string): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await p;
  if (r.status < 200 || r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text}`);
  return r.json;
}

/** Runs fn(0 … n-1) with at most `concurrency` at a time; results in index order. */
export async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}
