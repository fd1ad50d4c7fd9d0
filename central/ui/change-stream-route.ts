import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { ErrorBody } from '../../shared/api/common.js';
import { requirePermission } from '../api/auth-middleware.js';
import type { ApiDeps } from '../api/deps.js';
import { scopeOf } from '../auth/scope.js';
import { InvalidError } from '../../shared/errors/domain-errors.js';
import { parseDuration } from '../../shared/util/duration.js';
import { changeNote, STREAMED_COLLECTIONS, type ChangeNote } from './change-stream.js';

/** Keep-alive comment interval: proxies close idle streams, and a dead client is noticed on write. */
export const HEARTBEAT_MS = 15_000;
/** A client that does not read: notes beyond this are dropped and the stream closed (it reconnects and refetches). */
const MAX_PENDING = 1000;
/** The longest `?timeout=` (a bounded stream, e.g. for scripts and tests). */
export const MAX_STREAM_TIMEOUT_MS = 24 * 3600_000;

const err = (d: string) => ({ description: d, content: { 'application/json': { schema: ErrorBody } } });

/**
 * `GET /api/v1/changes/stream`: Server-Sent Events from the store's change feed (every acknowledged
 * write), for live views. Bearer auth like every API route (the console reads it with fetch, not
 * EventSource, so the token stays in a header); a site-scoped token hears only its site.
 */
export function registerChangeStreamRoute(app: OpenAPIHono, deps: ApiDeps): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/changes/stream', tags: ['Changes'], security: [{ bearer: [] }], operationId: 'stream_changes',
      summary: 'Follow changes to tasks, runs, machines and agents live (Server-Sent Events)',
      description: `One \`change\` event per acknowledged write to ${STREAMED_COLLECTIONS.join(', ')}: the collection, the id, put or delete and the new state. Fetch the object through its own route to see it (redaction and site scope apply there). A comment line every ${HEARTBEAT_MS / 1000} s keeps the stream open. A site-scoped token hears only its own site.`,
      middleware: [requirePermission(deps.tokens, 'read')] as const,
      request: { query: z.object({ timeout: z.string().max(16).optional().openapi({ description: 'end the stream after this long (e.g. 30s, 5m); default: never', example: '5m' }) }) },
      responses: {
        200: { description: 'An event stream', content: { 'text/event-stream': { schema: z.string(), example: 'event: change\ndata: {"collection":"tasks","id":"t_01J…","type":"put","state":"succeeded"}\n\n' } } },
        400: err('invalid timeout'),
        401: err('unauthenticated'),
      },
    }),
    (c) => {
      const scope = scopeOf(c);
      const timeout = c.req.valid('query').timeout;
      let endAfter: number | undefined;
      if (timeout !== undefined) {
        try {
          endAfter = Math.min(parseDuration(timeout), MAX_STREAM_TIMEOUT_MS);
        } catch (e) {
          throw new InvalidError((e as Error).message, [{ path: 'timeout', message: 'not a duration' }]);
        }
      }
      return streamSSE(c, async (stream) => {
        const pending: ChangeNote[] = [];
        let wake: (() => void) | undefined;
        let overflow = false;
        const off = deps.changes.on((ch) => {
          const note = changeNote(ch, scope);
          if (!note) return;
          if (pending.length >= MAX_PENDING) overflow = true;
          else pending.push(note);
          wake?.();
        });
        const beat = setInterval(() => wake?.(), HEARTBEAT_MS);
        let ended = false;
        const end = endAfter === undefined ? undefined : setTimeout(() => ((ended = true), wake?.()), endAfter);
        stream.onAbort(() => wake?.());
        try {
          await stream.writeSSE({ event: 'ready', data: '{}' });
          while (!stream.aborted && !overflow && !ended) {
            if (pending.length === 0) {
              await new Promise<void>((r) => (wake = r));
              wake = undefined;
              if (pending.length === 0 && !stream.aborted && !ended) await stream.write(': keep-alive\n\n');
            }
            for (const note of pending.splice(0)) await stream.writeSSE({ event: 'change', data: JSON.stringify(note) });
          }
        } finally {
          off();
          clearInterval(beat);
          clearTimeout(end);
        }
      });
    },
  );
}
