import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { request, type Dispatcher } from 'undici';
import { backoffDelay } from '../util/backoff.js';
import { parseDuration } from '../util/duration.js';
import { buildDispatcher } from './dispatcher.js';

export interface ClientConfig {
  url: string;
  token?: string;
  /** PEM text of the CA that issued the central's certificate. */
  ca?: string;
  /**
   * How long one request may take (ms), default 30 s; a long poll (`?wait=` or `?timeout=` in the path)
   * gets that much more.
   */
  timeoutMs?: number;
  /** Extra attempts of an idempotent request (GET, HEAD, PUT, DELETE) after a network error, 502, 503, 504 or 429; default 2. Never for POST or PATCH. */
  retries?: number;
  /** First backoff delay between attempts (ms, doubled each time, full jitter); default 250. */
  retryBaseMs?: number;
  /** Honour HTTP_PROXY / HTTPS_PROXY / NO_PROXY (default true; a pinned or unchecked certificate never goes through a proxy). */
  proxy?: boolean;
  /** TLS beyond a CA (a BMC's self-signed certificate): a SHA-256 pin of the leaf, or no check at all. */
  tls?: { fingerprint256?: string; insecure?: boolean };
  /** Who answers, for error messages (default "the central"). */
  peer?: string;
}

export class ApiClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/**
 * Resolves the connection from flags, then UNDERLAY_URL / UNDERLAY_TOKEN / UNDERLAY_CA, then — on the
 * central's own host — the data dir (UNDERLAY_DATA or ./data: its admin.token and ca.pem), so a newcomer
 * can run `npm start` and then `npx underlay sites list` with nothing to configure.
 */
export function resolveClientConfig(flags: { url?: string; token?: string; ca?: string }, env = process.env): ClientConfig {
  const dataDir = env.UNDERLAY_DATA ?? './data';
  const url = flags.url ?? env.UNDERLAY_URL ?? (existsSync(join(dataDir, 'ca.pem')) ? 'https://127.0.0.1:8443' : undefined);
  if (!url) throw new Error('no central to talk to: pass --url or set UNDERLAY_URL (e.g. https://central:8443)');
  let token = flags.token ?? env.UNDERLAY_TOKEN;
  if (!token && existsSync(join(dataDir, 'admin.token'))) token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const caPath = flags.ca ?? env.UNDERLAY_CA ?? (existsSync(join(dataDir, 'ca.pem')) ? join(dataDir, 'ca.pem') : undefined);
  let ca: string | undefined;
  if (caPath) {
    try {
      ca = readFileSync(caPath, 'utf8');
    } catch (e) {
      throw new Error(`cannot read the CA certificate ${caPath}: ${(e as Error).message}`);
    }
  }
  return { url: url.replace(/\/+$/, ''), token, ca };
}

export interface ApiResponse<T> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const RETRY_STATUS = new Set([429, 502, 503, 504]);
const RETRY_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED']);
const CERT_CODES = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID']);
export const DEFAULT_TIMEOUT_MS = 30_000;

function errorCode(e: unknown): string | undefined {
  const err = e as { code?: string; cause?: { code?: string } };
  return err?.code ?? err?.cause?.code;
}

/** The long-poll wait a path asks the server for (`wait=` or `timeout=`), in ms; 0 if none. */
export function longPollMs(path: string): number {
  const q = new URLSearchParams(path.split('?')[1] ?? '');
  const v = q.get('wait') ?? q.get('timeout');
  if (!v) return 0;
  try {
    return parseDuration(v);
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The one HTTP client of the API (the CLI, the agent's join, the agent's Redfish BMCs): JSON over undici,
 * with a CA or a pinned certificate, a time budget per request, retries with backoff for idempotent
 * calls, and the HTTP(S)_PROXY / NO_PROXY environment.
 */
export class ApiClient {
  private dispatcher?: Dispatcher;

  constructor(readonly config: ClientConfig) {}

  private get peer(): string {
    return this.config.peer ?? 'the central';
  }

  private getDispatcher(): Dispatcher {
    this.dispatcher ??= buildDispatcher({ ca: this.config.ca, fingerprint256: this.config.tls?.fingerprint256, insecure: this.config.tls?.insecure, proxy: this.config.proxy });
    return this.dispatcher;
  }

  /** Closes idle connections (a long-lived process that drops the client). */
  async close(): Promise<void> {
    await this.dispatcher?.close();
    this.dispatcher = undefined;
  }

  async raw<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const retries = IDEMPOTENT.has(method.toUpperCase()) ? (this.config.retries ?? 2) : 0;
    for (let attempt = 0; ; attempt++) {
      let res: ApiResponse<T> | undefined;
      try {
        res = await this.once<T>(method, path, body, headers);
      } catch (e) {
        if (attempt >= retries || !RETRY_CODES.has(errorCode(e) ?? '')) throw this.explain(e);
      }
      if (res && (attempt >= retries || !RETRY_STATUS.has(res.status))) return res;
      const after = Number(res?.headers['retry-after']);
      await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 10_000) : backoffDelay(attempt, { baseMs: this.config.retryBaseMs ?? 250, maxMs: 5000, minMs: 50 }));
    }
  }

  private async once<T>(method: string, path: string, body: unknown, headers: Record<string, string>): Promise<ApiResponse<T>> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const reqHeaders: Record<string, string> = { accept: 'application/json', ...headers };
    if (this.config.token) reqHeaders.authorization = `Bearer ${this.config.token}`;
    if (payload !== undefined) reqHeaders['content-type'] ??= 'application/json';
    const budget = (this.config.timeoutMs ?? DEFAULT_TIMEOUT_MS) + longPollMs(path);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(Object.assign(new Error(`${this.peer} did not answer within ${budget} ms`), { code: 'ETIMEDOUT' })), budget);
    try {
      const res = await request(this.config.url + path, { method: method as Dispatcher.HttpMethod, headers: reqHeaders, body: payload, dispatcher: this.getDispatcher(), signal: abort.signal });
      const text = await res.body.text();
      let parsed: unknown = text;
      if (String(res.headers['content-type'] ?? '').includes('json') && text) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
      }
      return { status: res.statusCode, headers: res.headers, body: parsed as T };
    } catch (e) {
      throw abort.signal.aborted ? abort.signal.reason : e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The error of a failed request as one sentence an operator can act on. */
  private explain(e: unknown): Error {
    const code = errorCode(e);
    if (code === 'ECONNREFUSED') return Object.assign(new Error(`cannot reach ${this.peer} at ${this.config.url} (connection refused); is it running?`), { code });
    if (code && CERT_CODES.has(code)) {
      return Object.assign(new Error(this.config.peer ? `${this.peer}'s certificate is not trusted [${code}]` : `the central's certificate is not trusted: pass --ca or set UNDERLAY_CA to its CA (the central's data dir has ca.pem) [${code}]`), { code });
    }
    if (code === 'CERT_PIN_MISMATCH' || code === 'ETIMEDOUT') return e as Error;
    return Object.assign(new Error(`${this.peer} at ${this.config.url}: ${(e as Error).message}${code ? ` [${code}]` : ''}`), { code });
  }

  /** Like raw(), but throws ApiClientError for any status ≥ 400. */
  async call<T = unknown>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const res = await this.raw<T>(method, path, body, headers);
    if (res.status >= 400) {
      const err = (res.body as { error?: { code?: string; message?: string; details?: unknown } })?.error;
      throw new ApiClientError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? `HTTP ${res.status}`, err?.details);
    }
    return res.body;
  }
}
