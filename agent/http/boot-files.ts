import type { Hono } from 'hono';
import { serveStatic } from '@hono/node-server/serve-static';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { getMimeType } from 'hono/utils/mime';
import type { ServerResponse } from 'node:http';
import { realpath, stat } from 'node:fs/promises';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { InvalidError, NotFoundError } from '../../shared/errors/domain-errors.js';
import type { BootHttp } from './boot-http.js';
import { BusyError } from './errors.js';
import { BOOT_ROUTES, filePathOf } from '../boot/urls.js';
import { sendFileRange, singleRange } from './file-sender.js';

const IPXE_BINARIES = new Set(['undionly.kpxe', 'ipxe.efi', 'snponly.efi', 'ipxe.pxe', 'snp.efi']);

const inside = (root: string, p: string) => {
  const r = relative(root, p);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r);
};

/**
 * The real path of a file under `root`, or null when it is not a regular file whose real path (every
 * symlink resolved) stays inside the real `root`. The boot directory may hold symlinks between its own
 * files (the e2e rack links the discovery image in), never to anything outside it (TFTP refuses the same).
 */
export async function realFileInside(root: string, target: string): Promise<string | null> {
  try {
    const [realRoot, real] = await Promise.all([realpath(root), realpath(target)]);
    if (!inside(realRoot, real)) return null;
    return (await stat(real)).isFile() ? real : null;
  } catch {
    return null;
  }
}

/** iPXE binaries and boot artifacts (`/files/*`, streamed, with Range), confined to the boot directory. */
export function registerBootFiles(app: Hono, h: BootHttp): void {
  const bootDir = resolve(h.o.bootDir);

  app.get(BOOT_ROUTES.ipxeBinary, (c) => {
    const name = c.req.param('binary');
    const p = join(h.o.ipxeDir, name);
    if (!IPXE_BINARIES.has(name) || !existsSync(p)) throw new NotFoundError('no such iPXE binary on this agent');
    return new Response(Readable.toWeb(createReadStream(p)) as ReadableStream, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(statSync(p).size) } });
  });

  app.use(BOOT_ROUTES.files, async (c, next) => {
    let rel: string;
    try {
      rel = decodeURIComponent(filePathOf(c.req.path));
    } catch {
      throw new InvalidError('bad path');
    }
    const target = resolve(bootDir, rel);
    if (rel.includes('\0') || rel.split('/').includes('..') || !inside(bootDir, target)) throw new InvalidError('bad path');
    // Dot-files are work in progress (an artifact still downloading, .partial-<sha256>): never served.
    if (rel.split('/').some((seg) => seg.startsWith('.'))) throw new NotFoundError('no such file on this agent');
    // Both the fast path and serveStatic below open what this check resolved: no symlink out of bootDir.
    if (c.req.method === 'GET' || c.req.method === 'HEAD') {
      if (!(await realFileInside(bootDir, target))) throw new NotFoundError('no such file on this agent');
    }
    if (c.req.method !== 'GET') return next();
    // A download slot, held until the response is closed (sent or abandoned); none free, or this client
    // address holding its share of them: 503 + Retry-After.
    const slot = h.fileAdmission.enter(h.remote(c));
    if ('retryAfterSec' in slot) {
      // The connection goes too: a waiting client holds no socket (iPXE reconnects for its retry anyway).
      c.header('connection', 'close');
      throw new BusyError(slot.retryAfterSec);
    }
    const out = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    if (out && typeof out.once === 'function') out.once('close', slot.release);
    try {
      await next();
    } finally {
      if (!out || typeof out.once !== 'function') slot.release();
    }
  });
  // Fast path for GETs under @hono/node-server (kernels, initrds, disk images), whole file or one byte
  // range (the deploy's `curl -C` resume): the file goes straight into the Node response through pooled
  // buffers (file-sender.ts) instead of through a web ReadableStream, which cost ~3-4x throughput in
  // scripts/bench/boot. Several ranges, HEAD, percent-encoded paths and anything unusual go to serveStatic.
  app.get(BOOT_ROUTES.files, async (c, next) => {
    const out = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    if (!out || typeof out.writeHead !== 'function' || c.req.method !== 'GET' || c.req.path.includes('%') || c.req.path.includes('\\')) return next();
    const rel = filePathOf(c.req.path);
    if (!rel || rel.includes('//')) return next();
    const real = await realFileInside(bootDir, resolve(bootDir, rel));
    if (!real) return next();
    const st = await stat(real);
    const range = singleRange(c.req.header('range'), st.size);
    if (range === 'unsatisfiable' || (range === null && c.req.header('range') !== undefined)) return next();
    const { start, end } = range ?? { start: 0, end: st.size };
    out.writeHead(range ? 206 : 200, {
      'content-type': getMimeType(real) ?? 'application/octet-stream',
      'content-length': String(end - start),
      'last-modified': st.mtime.toUTCString(),
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${end - 1}/${st.size}` } : {}),
    });
    sendFileRange(out, real, start, end).catch((err: Error) => h.log.debug({ err: err.message, path: c.req.path }, 'boot file transfer ended early'));
    return RESPONSE_ALREADY_SENT;
  });
  app.get(BOOT_ROUTES.files, serveStatic({ root: bootDir, rewriteRequestPath: (p) => `/${filePathOf(p)}` }));
}
