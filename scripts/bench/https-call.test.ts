import { createServer, type Server } from 'node:https';
import { Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, issueWithNewKey } from '../../central/pki/ca.js';
import { call, callRetrying, isStaleKeepAlive, RetryCount, type Conn } from './https-call.js';

let server: Server;
let conn: Conn;
let resets = 0;
beforeAll(async () => {
  const ca = createCa('bench test CA');
  const leaf = issueWithNewKey(ca, { commonName: '127.0.0.1', sans: ['127.0.0.1'], usage: 'server' });
  server = createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
    if (resets > 0) {
      resets--;
      req.socket.destroy(); // the server resets the connection under load: no answer at all
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  conn = { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, ca: ca.certPem, token: 't' };
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('the benches’ HTTPS client under connection resets', () => {
  it('a plain call fails on a reset; callRetrying retries it, answers, and counts each retry', async () => {
    const agent = new Agent({ keepAlive: false });
    resets = 1;
    await expect(call(conn, agent, 'GET', '/x')).rejects.toThrow(/socket hang up|ECONNRESET/);
    resets = 2;
    const retries = new RetryCount();
    const r = await callRetrying<{ path: string }>(retries, conn, agent, 'GET', '/y');
    expect(r.status).toBe(200);
    expect(r.json.path).toBe('/y');
    expect(retries.n).toBe(2);
  });

  it('tells a reset on a kept-alive connection (safe to send again) from one on a fresh connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    resets = 1;
    const fresh = await call(conn, agent, 'POST', '/a', {}).catch((e: unknown) => e);
    expect(isStaleKeepAlive(fresh)).toBe(false);
    expect((await call(conn, agent, 'POST', '/b', {})).status).toBe(200);
    resets = 1; // the server drops the connection the next request arrives on: the one kept alive
    const reused = await call(conn, agent, 'POST', '/c', {}).catch((e: unknown) => e);
    expect(isStaleKeepAlive(reused)).toBe(true);
    agent.destroy();
  });

  it('gives up after its attempts with the connection error', async () => {
    const agent = new Agent({ keepAlive: false });
    resets = 10;
    const retries = new RetryCount();
    await expect(callRetrying(retries, conn, agent, 'GET', '/z', undefined, undefined, 3)).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(retries.n).toBe(2);
    resets = 0;
  });
});
