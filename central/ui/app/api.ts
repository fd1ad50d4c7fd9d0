/**
 * The console's one HTTP client: every call goes to this origin's /api/v1 with the signed-in token as a
 * bearer header. The token lives only in this object (memory): never in localStorage, sessionStorage or
 * a cookie, so a reload signs out and no other site's form can act with it.
 */
export type Role = 'admin' | 'operator' | 'viewer' | 'agent-join';
export interface Me {
  id: string;
  name?: string;
  role: Role;
  site?: string;
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Page<T> {
  items: T[];
  total: number;
  limit?: number;
  offset?: number;
}

export class Api {
  constructor(private readonly token: string) {}

  private headers(json: boolean): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, accept: 'application/json', ...(json ? { 'content-type': 'application/json' } : {}) };
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`/api/v1${path}`, { method, headers: this.headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiFailure(res.status, e?.code ?? `http_${res.status}`, e?.message ?? `${method} ${path}: ${res.status}`);
    }
    return parsed as T;
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.call<T>('POST', path, body ?? {});
  }

  /** The change stream (SSE over fetch, so the token stays in a header); reconnects until `signal` aborts. */
  async follow(onChange: (c: ChangeNote) => void, signal: AbortSignal, onState?: (live: boolean) => void): Promise<void> {
    while (!signal.aborted) {
      try {
        const res = await fetch('/api/v1/changes/stream', { headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' }, signal, credentials: 'omit', cache: 'no-store' });
        if (!res.ok || !res.body) throw new Error(`stream: ${res.status}`);
        onState?.(true);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event === 'change' && data) onChange(JSON.parse(data) as ChangeNote);
          }
        }
      } catch {
        /* reconnect below */
      }
      onState?.(false);
      if (!signal.aborted) await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

export interface ChangeNote {
  collection: string;
  id: string;
  type: 'put' | 'delete';
  state?: string;
}

/** Roles that may act (the API decides anyway; the console only hides what would be refused). */
export const canWrite = (me: Me) => me.role === 'admin' || me.role === 'operator';
export const canAdmin = (me: Me) => me.role === 'admin';
