import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClientConfig } from './api-client.js';

/** A one-line progress display on stderr (redrawn on a TTY, a line every 10% otherwise). */
export function progress(label: string, total: number | undefined): { tick(n: number): void; done(): void } {
  let seen = 0;
  let lastPct = -10;
  const started = Date.now();
  const tty = process.stderr.isTTY;
  const line = () => {
    const mb = (seen / 1048576).toFixed(1);
    const rate = (seen / 1048576 / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1);
    const pct = total ? `${Math.floor((seen / total) * 100)}% ` : '';
    return `${label}: ${pct}${mb} MiB${total ? ` of ${(total / 1048576).toFixed(1)} MiB` : ''} (${rate} MiB/s)`;
  };
  return {
    tick(n) {
      seen += n;
      if (tty) process.stderr.write(`\r${line()}\x1b[K`);
      else if (total) {
        const pct = Math.floor((seen / total) * 100);
        if (pct >= lastPct + 10) {
          lastPct = pct - (pct % 10);
          process.stderr.write(`${line()}\n`);
        }
      }
    },
    done() {
      process.stderr.write(`${tty ? '\r' : ''}${line()}\n`);
    },
  };
}

/** Downloads a URL to a file, hashing it; returns the sha256 and size. */
export async function downloadTo(url: string, file: string, label: string): Promise<{ sha256: string; size: number }> {
  const res = await fetch(url, { redirect: 'follow' });
  if (!res.ok || !res.body) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length')) || undefined;
  const bar = progress(label, total);
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    Readable.fromWeb(res.body as never),
    async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) {
        hash.update(c);
        size += c.length;
        bar.tick(c.length);
        yield c;
      }
    },
    createWriteStream(file),
  );
  bar.done();
  return { sha256: hash.digest('hex'), size };
}

/** What an upload records besides the bytes: upstream URLs, a name, disk-image metadata. */
export interface ArtifactMeta {
  urls?: string[];
  name?: string;
  image?: { format: string; rawSha256: string; rawSize: number };
  /** Move the name from the bytes that hold it to these. */
  replace?: boolean;
}

/**
 * Streams a file to the central's artifact store (PUT /api/v1/artifacts/<sha256>?url=…&name=…). `file`
 * null: the central already has the bytes; only the record is updated.
 */
export async function uploadArtifact(cfg: ClientConfig, file: string | null, sha256: string, meta: ArtifactMeta = {}): Promise<unknown> {
  const q = new URLSearchParams();
  for (const u of meta.urls ?? []) q.append('url', u);
  if (meta.name) q.set('name', meta.name);
  if (meta.image) {
    q.set('format', meta.image.format);
    q.set('rawSha256', meta.image.rawSha256);
    q.set('rawSize', String(meta.image.rawSize));
  }
  if (meta.replace) q.set('replace', 'true');
  const u = new URL(`${cfg.url}/api/v1/artifacts/${sha256}?${q}`);
  const size = file ? statSync(file).size : 0;
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      u,
      {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), ...(cfg.token ? { authorization: `Bearer ${cfg.token}` } : {}) },
        ...(cfg.ca ? { ca: cfg.ca } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          let parsed: unknown = body;
          try {
            parsed = JSON.parse(body);
          } catch {
            /* text */
          }
          if ((res.statusCode ?? 500) >= 400) reject(new Error(`upload refused: ${(parsed as { error?: { message?: string } })?.error?.message ?? body} [${res.statusCode}]`));
          else resolve(parsed);
        });
      },
    );
    req.on('error', reject);
    if (file) {
      const bar = progress(`upload ${sha256.slice(0, 12)}`, size);
      const rs = createReadStream(file);
      rs.on('data', (c) => bar.tick((c as Buffer).length));
      rs.on('end', () => bar.done());
      rs.pipe(req);
    } else req.end();
  });
}
