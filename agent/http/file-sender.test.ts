import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, createServer, get, type Server } from 'node:http';
import { mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { open } from 'node:fs/promises';
import { CHUNK_BYTES, MAX_READS, sendFileRange, sentBy, singleRange } from './file-sender.js';
import { nativeAddon } from '../tftp/native-data-path.js';

const dir = mkdtempSync(join(tmpdir(), 'ul-file-sender-'));
const file = join(dir, 'image.raw');
const big = join(dir, 'big.raw');
const data = randomBytes(3 * CHUNK_BYTES + 12345); // crosses chunk boundaries, ends mid-chunk
let server: Server;
let port = 0;
const errors: Error[] = [];

beforeAll(async () => {
  writeFileSync(file, data);
  // A sparse file larger than any socket buffer: a client that stops reading holds its transfer open.
  writeFileSync(big, "");
  truncateSync(big, 1 << 30);
  // /<from>/<to> on the native path (when the addon is built), /js/<from>/<to> on the JS path; /big/... for `big`.
  server = createServer((req, res) => {
    const segs = req.url!.split('/').filter(Boolean);
    const [from, to] = segs.slice(-2).map(Number);
    res.writeHead(200, { 'content-length': String(to! - from!) });
    sendFileRange(res, segs.includes('big') ? big : file, from!, to!, { native: segs.includes('js') ? 'off' : 'auto' }).catch((e: Error) => errors.push(e));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

function fetchBytes(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve(Buffer.concat(parts)));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const openFds = () => readdirSync('/proc/self/fd').length;

/** Polls until `done` (a loaded CI machine can take seconds to deliver a reset). */
async function until(done: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !done() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
}

const native = nativeAddon().ok;

describe.each([
  { path: 'native (sendfile on the addon threads)', p: '', by: 'native' as const },
  { path: 'JS (pooled buffers)', p: '/js', by: 'js' as const },
])('sendFileRange, $path', ({ p, by }) => {
  it.skipIf(by === 'native' && !native)('sends the whole file and any range of it byte for byte, on several connections at once', async () => {
    const before = sentBy[by];
    expect((await fetchBytes(`${p}/0/${data.length}`)).equals(data)).toBe(true);
    expect((await fetchBytes(`${p}/${CHUNK_BYTES - 7}/${2 * CHUNK_BYTES + 9}`)).equals(data.subarray(CHUNK_BYTES - 7, 2 * CHUNK_BYTES + 9))).toBe(true);
    expect((await fetchBytes(`${p}/${data.length - 1}/${data.length}`)).equals(data.subarray(data.length - 1))).toBe(true);
    expect((await fetchBytes(`${p}/5/5`)).length).toBe(0);
    // Concurrent transfers do not mix each other's bytes.
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => fetchBytes(`${p}/${i * 1000}/${data.length - i}`)));
    all.forEach((b, i) => expect(b.equals(data.subarray(i * 1000, data.length - i)), `transfer ${i}`).toBe(true));
    expect(errors).toEqual([]);
    expect(sentBy[by] - before).toBe(12);
  });

  it.skipIf(by === 'native' && !native)('keeps the connection alive: requests one after another on one socket each get their bytes', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    try {
      for (const [from, to] of [[0, data.length], [7, 70_000], [CHUNK_BYTES, data.length]] as const) {
        const body = await new Promise<Buffer>((resolve, reject) => {
          const req = get({ host: '127.0.0.1', port, path: `${p}/${from}/${to}`, agent }, (res) => {
            const parts: Buffer[] = [];
            res.on('data', (d: Buffer) => parts.push(d));
            res.on('end', () => resolve(Buffer.concat(parts)));
          }).on('error', reject);
          req.on('socket', (s) => sockets.add(s));
        });
        expect(body.equals(data.subarray(from, to))).toBe(true);
      }
    } finally {
      agent.destroy();
    }
    expect(sockets.size).toBe(1);
    expect(errors).toEqual([]);
  });

  // Only the JS path reads the file on the thread pool; the native path has no pool reads to count.
  if (by === 'js') it('runs at most MAX_READS file reads at once over all transfers (the thread pool stays free for the DHCP journal)', async () => {
    const fh = await open(file, 'r');
    const proto = Object.getPrototypeOf(fh) as { read: (...a: unknown[]) => Promise<unknown> };
    await fh.close();
    const orig = proto.read;
    let now = 0;
    let most = 0;
    proto.read = async function (this: unknown, ...a: unknown[]) {
      most = Math.max(most, ++now);
      try {
        await new Promise((r) => setTimeout(r, 2)); // a slow disk
        return await orig.apply(this, a);
      } finally {
        now--;
      }
    };
    try {
      const all = await Promise.all(Array.from({ length: 12 }, () => fetchBytes(`${p}/0/${data.length}`)));
      for (const b of all) expect(b.equals(data)).toBe(true);
    } finally {
      proto.read = orig;
    }
    expect(most).toBe(MAX_READS);
  });

  it.skipIf(by === 'native' && !native)('closes the file and keeps serving when a client goes away mid-transfer', async () => {
    const before = openFds();
    await new Promise<void>((resolve) => {
      const req = get({ host: '127.0.0.1', port, path: `${p}/big/0/${1 << 30}` }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
    });
    await until(() => errors.length > 0);
    // Seen as the close, or as the failed write to the reset socket: either way the transfer ended.
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/closed|EPIPE|ECONNRESET|destroyed|aborted|socket-error/);
    errors.length = 0;
    await until(() => openFds() <= before);
    expect(openFds()).toBeLessThanOrEqual(before);
    expect((await fetchBytes(`${p}/0/${data.length}`)).equals(data)).toBe(true);
  });

  it('rejects when the file is shorter than the range (the response is cut, not padded)', async () => {
    const got = await fetchBytes(`${p}/${data.length - 10}/${data.length + 10}`).catch(() => Buffer.alloc(0));
    expect(got.length).toBeLessThan(20);
    await until(() => errors.length > 0);
    expect(errors[0]?.message).toMatch(/file ended at byte/);
    errors.length = 0;
  });
});

describe('singleRange', () => {
  it('reads one byte range as curl -C and resuming clients send it', () => {
    expect(singleRange(undefined, 100)).toBeNull();
    expect(singleRange('bytes=10-', 100)).toEqual({ start: 10, end: 100 });
    expect(singleRange('bytes=10-19', 100)).toEqual({ start: 10, end: 20 });
    expect(singleRange('bytes=90-1000', 100)).toEqual({ start: 90, end: 100 });
    expect(singleRange('bytes=-30', 100)).toEqual({ start: 70, end: 100 });
    expect(singleRange('bytes=-300', 100)).toEqual({ start: 0, end: 100 });
  });

  it('leaves several ranges and odd headers to the generic path, and says when a range cannot be met', () => {
    for (const h of ['bytes=1-2,5-6', 'items=1-2', 'bytes=-', 'bytes=a-b', 'bytes 1-2']) expect(singleRange(h, 100), h).toBeNull();
    for (const h of ['bytes=100-', 'bytes=200-300', 'bytes=5-3', 'bytes=-0', `bytes=${'9'.repeat(30)}-`]) expect(singleRange(h, 100), h).toBe('unsatisfiable');
  });
});

describe.skipIf(!native)("the addon's sendFile (agent/tftp/native/file_send.c)", () => {
  const addon = () => {
    const l = nativeAddon();
    if (!l.ok || !l.addon.sendFile || !l.addon.cancelSend) throw new Error('addon without sendFile');
    return { sendFile: l.addon.sendFile.bind(l.addon), cancelSend: l.addon.cancelSend.bind(l.addon) };
  };
  const fdOf = (s: Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd;

  /** A connected TCP pair on loopback whose far end does not read until told to. */
  async function pair(): Promise<{ near: Socket; far: Promise<Socket>; close: () => void }> {
    const srv = createNetServer({ pauseOnConnect: true });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const far = new Promise<Socket>((r) => srv.once('connection', r));
    const near = connect((srv.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => near.once('connect', r));
    return {
      near,
      far,
      close: () => {
        near.destroy();
        void far.then((f) => f.destroy());
        srv.close();
      },
    };
  }

  it('refuses foreign and closed descriptors and impossible ranges, leaving nothing open', async () => {
    const { sendFile } = addon();
    const p = await pair();
    const fh = await open(file, 'r');
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    const listener = createNetServer();
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
    const listenerFd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
    const udpFd = (udp as unknown as { _handle: { fd: number } })._handle.fd;
    const dirFh = await open(dir, 'r');
    try {
      const before = openFds();
      const sock = fdOf(p.near);
      const ok = { socketFd: sock, fileFd: fh.fd, start: 0, end: 10, idleMs: 1000 };
      const cases: [string, object, RegExp][] = [
        ['a file as the socket', { ...ok, socketFd: fh.fd }, /not a stream socket/],
        ['a UDP socket', { ...ok, socketFd: udpFd }, /not a stream socket/],
        ['a listening socket', { ...ok, socketFd: listenerFd }, /not a connected socket/],
        ['a closed descriptor', { ...ok, socketFd: 100_000 }, /not an open descriptor/],
        ['a directory as the file', { ...ok, fileFd: dirFh.fd }, /not a regular file/],
        ['the socket as the file', { ...ok, fileFd: sock }, /not a regular file/],
        ['a range past the end', { ...ok, end: data.length + 1 }, /beyond the file/],
        ['a backwards range', { ...ok, start: 10, end: 5 }, /end must not be below start/],
        ['a negative descriptor', { ...ok, socketFd: -1 }, /socketFd must be an integer/],
        ['a fractional offset', { ...ok, start: 0.5 }, /start must be an integer/],
        ['no idle timeout', { ...ok, idleMs: 0 }, /idleMs must be an integer/],
      ];
      for (const [what, o, err] of cases) expect(() => sendFile(o as never, () => undefined), what).toThrow(err);
      expect(() => sendFile(null as never, () => undefined)).toThrow(/expects an object and a function/);
      expect(openFds()).toBe(before);
    } finally {
      await fh.close();
      await dirFh.close();
      udp.close();
      listener.close();
      p.close();
    }
  });

  it('sends its copy of the descriptors: the range arrives even when JS closed its file at once', async () => {
    const { sendFile } = addon();
    const p = await pair();
    try {
      const fh = await open(file, 'r');
      const done = new Promise<{ outcome: string; bytes: number }>((resolve) => sendFile({ socketFd: fdOf(p.near), fileFd: fh.fd, start: 100, end: 200_100, idleMs: 10_000 }, resolve));
      await fh.close();
      const far = await p.far;
      const parts: Buffer[] = [];
      far.on('data', (d: Buffer) => parts.push(d));
      far.resume();
      expect(await done).toEqual({ outcome: 'complete', bytes: 200_000 });
      await until(() => Buffer.concat(parts).length >= 200_000);
      expect(Buffer.concat(parts).equals(data.subarray(100, 200_100))).toBe(true);
    } finally {
      p.close();
    }
  });

  it('stops on cancelSend, and after idleMs when the client takes no byte', async () => {
    const { sendFile, cancelSend } = addon();
    for (const how of ['cancel', 'idle'] as const) {
      const p = await pair();
      const fh = await open(big, 'r');
      try {
        const done = new Promise<{ outcome: string; bytes: number }>((resolve) => {
          const h = sendFile({ socketFd: fdOf(p.near), fileFd: fh.fd, start: 0, end: 1 << 30, idleMs: how === 'idle' ? 200 : 600_000 }, resolve);
          if (how === 'cancel') setTimeout(() => cancelSend(h), 50);
        });
        const r = await done;
        expect(r.outcome, how).toBe(how === 'cancel' ? 'cancelled' : 'timeout');
        expect(r.bytes).toBeLessThan(1 << 30);
      } finally {
        await fh.close();
        p.close();
      }
    }
  });
});
