import { readFileSync, existsSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { PinnedAgent } from './pinned-agent.js';

export interface ClientConfig {
  url: string;
  token?: string;
  /** PEM text of the CA that issued the central's certificate. */
  ca?: string;
  /** Per-request timeout (ms); none by default. */
  timeoutMs?: number;
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

/** A small JSON client for the central's API over HTTPS with a pinned CA. */
export class ApiClient {
  constructor(readonly config: ClientConfig) {}

  async raw<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const u = new URL(this.config.url + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const reqHeaders: Record<string, string> = { accept: 'application/json', ...headers };
    if (this.config.token) reqHeaders.authorization = `Bearer ${this.config.token}`;
    if (payload) {
      reqHeaders['content-type'] = 'application/json';
      reqHeaders['content-length'] = String(payload.length);
    }
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const peer = this.config.peer ?? 'the central';
      const pin = this.config.tls?.fingerprint256;
      const tlsOpts = u.protocol !== 'https:' ? {} : pin ? { agent: new PinnedAgent(pin) } : this.config.tls?.insecure ? { rejectUnauthorized: false } : this.config.ca ? { ca: this.config.ca } : {};
      const req = send(u, { method, headers: reqHeaders, ...tlsOpts }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          if ((res.headers['content-type'] ?? '').includes('json') && text) {
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = text;
            }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed as T });
        });
        res.on('error', reject);
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ECONNREFUSED') reject(Object.assign(new Error(`cannot reach ${peer} at ${this.config.url} (connection refused); is it running?`), { code: e.code }));
        else if (e.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || e.code === 'SELF_SIGNED_CERT_IN_CHAIN' || e.code === 'DEPTH_ZERO_SELF_SIGNED_CERT') {
          reject(Object.assign(new Error(this.config.peer ? `${peer}'s certificate is not trusted [${e.code}]` : `the central's certificate is not trusted: pass --ca or set UNDERLAY_CA to its CA (the central's data dir has ca.pem) [${e.code}]`), { code: e.code }));
        } else reject(e);
      });
      if (this.config.timeoutMs) req.setTimeout(this.config.timeoutMs, () => req.destroy(Object.assign(new Error(`${peer} did not answer within ${this.config.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      if (payload) req.write(payload);
      req.end();
    });
  }

  /** Like raw(), but throws ApiClientError for any status ≥ 400. */
  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw<T>(method, path, body);
    if (res.status >= 400) {
      const err = (res.body as { error?: { code?: string; message?: string; details?: unknown } })?.error;
      throw new ApiClientError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? `HTTP ${res.status}`, err?.details);
    }
    return res.body;
  }
}
