import { createServer, type Server } from 'node:http';
import type { Logger } from '../../shared/log/logger.js';
import type { Registry } from 'prom-client';

/** Default --metrics-listen: loopback only, never the provisioning network (Prometheus' node-exporter neighbour port). */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9464';

/** "HOST:PORT" (IPv6 in brackets) → host and port; "off" → null. */
export function parseMetricsListen(v: string): { host: string; port: number } | null {
  if (v.trim() === 'off') return null;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(v.trim());
  const port = Number(m?.[2]);
  if (!m || !(port >= 0 && port <= 65535)) throw new Error(`--metrics-listen must be HOST:PORT (e.g. ${DEFAULT_METRICS_LISTEN}) or off (got "${v}")`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** Serves GET /metrics (Prometheus text format) and nothing else on its own listener. */
export async function listenMetrics(registry: Registry, at: { host: string; port: number }, logger: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: Error) => {
        logger.error({ err: e.message }, 'metrics: collecting failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed; see the agent log\n');
      },
    );
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address();
  logger.info({ address: typeof a === 'object' && a ? `${a.address}:${a.port}` : String(a) }, 'metrics listening');
  return server;
}
