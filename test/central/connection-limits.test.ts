import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../agent-link/support.js';
import { startInProcessCentral, type InProcessCentral } from './in-process.js';

/** Issue 11, item 7: the central caps open connections and cuts off clients that trickle their headers. */
let central: InProcessCentral;
const sockets: TLSSocket[] = [];

beforeAll(async () => {
  central = await startInProcessCentral({ options: { maxConnections: 3, headersTimeoutMs: 1000 } });
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await central?.close();
});

/** A TLS connection that completed its handshake (true) or was refused before (false). */
function open(): Promise<{ ok: boolean; socket: TLSSocket }> {
  const u = new URL(central.url);
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname, port: Number(u.port), ca: central.ca, servername: 'localhost' });
    sockets.push(socket);
    socket.once('secureConnect', () => resolve({ ok: true, socket }));
    socket.once('error', () => resolve({ ok: false, socket }));
    socket.once('close', () => resolve({ ok: false, socket }));
  });
}

describe('connection limits', () => {
  it('refuses connections past --max-connections, and accepts again once one closes', async () => {
    const held = [await open(), await open(), await open()];
    expect(held.map((h) => h.ok)).toEqual([true, true, true]);
    expect((await open()).ok).toBe(false);
    held[0].socket.destroy();
    await waitFor('a slot is free again', async () => (await central.request('GET', '/healthz').catch(() => ({ status: 0 }))).status === 200, 10_000);
    for (const h of held) h.socket.destroy();
  });

  it('closes a connection that does not finish its headers within the headers timeout', async () => {
    // The slots of the previous test free up as the server sees those sockets close.
    const { socket } = await waitFor('a connection is accepted', async () => {
      const c = await open();
      return c.ok ? c : null;
    }, 10_000);
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
    const t0 = Date.now();
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString()));
      socket.on('close', () => resolve(got));
    });
    expect(Date.now() - t0).toBeLessThan(9_000);
    expect(answer === '' || answer.startsWith('HTTP/1.1 408')).toBe(true);
  });
});
