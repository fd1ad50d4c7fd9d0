import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Hono } from 'hono';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { listenBootHttp } from './server.js';

describe('the boot HTTP server', () => {
  const sockets: Socket[] = [];
  afterAll(() => sockets.forEach((s) => s.destroy()));

  it('survives server errors after start (e.g. EMFILE on accept) instead of crashing the agent', async () => {
    const app = new Hono().get('/', (c) => c.text('ok'));
    const s = await listenBootHttp(app, { hostname: '127.0.0.1', port: 0, logger: silentLogger });
    // Without a permanent 'error' listener, the second emit would throw and take the process down.
    expect(() => s.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }))).not.toThrow();
    expect(() => s.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }))).not.toThrow();
    const port = (s.address() as { port: number }).port;
    expect(await getOnce(port)).toBe('ok');
    await new Promise<void>((r) => s.close(() => r()));
  });

  it('caps open connections and drops a client that never finishes its headers', async () => {
    const app = new Hono().get('/', (c) => c.text('ok'));
    const s = await listenBootHttp(app, { hostname: '127.0.0.1', port: 0, logger: silentLogger, maxConnections: 2, headersTimeoutMs: 300, requestTimeoutMs: 300 });
    const port = (s.address() as { port: number }).port;
    const open = () =>
      new Promise<Socket>((resolve) => {
        const c = connect(port, '127.0.0.1', () => resolve(c));
        c.on('error', () => undefined);
        c.resume(); // read what the server sends, so its close is seen
        sockets.push(c);
      });
    const closed = (c: Socket) => new Promise<void>((r) => (c.destroyed ? r() : c.once('close', () => r())));
    const a = await open();
    const b = await open();
    a.write('GET / HTTP/1.1\r\nHost: x\r\n'); // never ends the headers (slowloris)
    b.write('GET / HTTP/1.1\r\nHost: x\r\n');
    const third = await open(); 
    await closed(third); // over maxConnections: closed at once
    await Promise.all([closed(a), closed(b)]); // headers timeout
    expect(await getOnce(port)).toBe('ok'); 
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }, 20_000);
});

/** One GET on its own connection (closed after), so server.close() never waits for a kept-alive socket. */
function getOnce(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body));
    }).on('error', reject);
  });
}
