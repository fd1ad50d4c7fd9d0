import { Registry, Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { DEFAULT_METRICS_LISTEN, listenMetrics, parseMetricsListen } from './metrics-server.js';

describe('agent metrics listener', () => {
  it('parses HOST:PORT, [IPv6]:PORT and off; refuses anything else clearly; defaults to loopback', () => {
    expect(parseMetricsListen(DEFAULT_METRICS_LISTEN)).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseMetricsListen('[::1]:9100')).toEqual({ host: '::1', port: 9100 });
    expect(parseMetricsListen('off')).toBeNull();
    for (const bad of ['9464', 'host:', ':9464', 'a:b:c', '127.0.0.1:99999']) expect(() => parseMetricsListen(bad), bad).toThrow(/--metrics-listen must be HOST:PORT/);
  });

  it('serves GET /metrics only', async () => {
    const registry = new Registry();
    new Counter({ name: 'underlay_agent_test_total', help: 'x', registers: [registry] }).inc(3);
    const server = await listenMetrics(registry, { host: '127.0.0.1', port: 0 }, silentLogger);
    try {
      const { port } = server.address() as { port: number };
      const ok = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('underlay_agent_test_total 3');
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST', body: 'x' })).status).toBe(404);
    } finally {
      server.close();
    }
  });
});
