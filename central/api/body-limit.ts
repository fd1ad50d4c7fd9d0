import type { MiddlewareHandler } from 'hono';
import { ApiError } from './api-error.js';

/**
 * The request byte limit, without reading the body: a declared Content-Length over the limit is refused
 * at once (413); a chunked body is only wrapped in a counter that fails the read once it passes the
 * limit. So nothing is read before the route's authentication has run (hono's bodyLimit buffers a
 * chunked body in full first, before any credential is looked at).
 */
export function lazyBodyLimit(maxSize: number): MiddlewareHandler {
  const tooLarge = () => new ApiError(413, 'payload_too_large', `request body exceeds ${maxSize} bytes`);
  return async (c, next) => {
    const raw = c.req.raw;
    if (!raw.body) return next();
    const declared = raw.headers.get('content-length');
    if (declared !== null && !raw.headers.has('transfer-encoding')) {
      if (Number.parseInt(declared, 10) > maxSize) throw tooLarge();
      return next();
    }
    let size = 0;
    const counted = raw.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctrl) {
          size += chunk.byteLength;
          if (size > maxSize) ctrl.error(tooLarge());
          else ctrl.enqueue(chunk);
        },
      }),
    );
    c.req.raw = new Request(raw, { body: counted, duplex: 'half' } as RequestInit);
    return next();
  };
}

/** Artifact uploads stream raw bytes straight to disk, with their own size limit and hash check. */
export function isRawUpload(method: string, path: string): boolean {
  return method === 'PUT' && path.startsWith('/api/v1/artifacts/');
}

/** The ApiError a body read failed with (the limit above), however the stream wrapped it. */
export function bodyReadError(e: unknown): ApiError | undefined {
  if (e instanceof ApiError) return e;
  const cause = (e as { cause?: unknown } | undefined)?.cause;
  return cause instanceof ApiError ? cause : undefined;
}
