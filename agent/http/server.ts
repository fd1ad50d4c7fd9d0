import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Server } from 'node:http';
import type { Logger } from '../../shared/log/logger.js';

export interface HttpServerLimits {
  /** Open connections at most; further ones are closed at once (default 4096). */
  maxConnections?: number;
  /** The whole header must arrive within this, ms (default 15 s: slowloris). */
  headersTimeoutMs?: number;
  /** The whole request (headers + body) must arrive within this, ms (default 60 s). */
  requestTimeoutMs?: number;
  /** An idle socket is closed after this, ms (default 120 s: above the runner's 60 s long-poll). */
  idleTimeoutMs?: number;
}

/**
 * Listens with the agent's boot app under connection limits and timeouts, so one client on the
 * provisioning network cannot hold every socket or file descriptor. Server errors after start (e.g.
 * EMFILE on accept during a connection flood) are logged, never thrown: an 'error' event without a
 * listener would end the agent.
 */
export async function listenBootHttp(app: Hono, o: { hostname: string; port: number; logger: Logger } & HttpServerLimits): Promise<Server> {
  const headersTimeout = o.headersTimeoutMs ?? 15_000;
  const requestTimeout = o.requestTimeoutMs ?? 60_000;
  const serverOptions = {
    headersTimeout,
    requestTimeout,
    maxHeaderSize: 16 * 1024,
    // How often Node checks the two timeouts above (its default, 30 s, would let a slow client linger).
    connectionsCheckingInterval: Math.min(1000, headersTimeout),
  };
  const s = await new Promise<Server>((resolve, reject) => {
    const srv = serve({ fetch: app.fetch, hostname: o.hostname, port: o.port, serverOptions }, () => {
      srv.off('error', reject);
      resolve(srv as Server);
    }) as Server;
    srv.once('error', reject);
  });
  s.maxConnections = o.maxConnections ?? 4096;
  s.maxHeadersCount = 100;
  s.setTimeout(o.idleTimeoutMs ?? 120_000, (socket) => socket.destroy());
  s.on('error', (err) => o.logger.error({ err: err.message }, 'HTTP boot server error (still serving)'));
  s.on('clientError', (err, socket) => {
    o.logger.debug({ err: err.message }, 'bad HTTP request on the boot surface');
    // A bad request pipelined behind one whose response is on its way (an image going out with
    // sendfile, file-sender.ts): a 400 written now would land inside that body, so the connection goes.
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  return s;
}
