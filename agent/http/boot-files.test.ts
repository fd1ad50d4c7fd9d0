import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import type { Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { silentLogger } from '../../shared/log/logger.js';
import { registerBootFiles } from './boot-files.js';
import { BootHttp } from './boot-http.js';
import { errorResponse } from './errors.js';
import { CHUNK_BYTES } from './file-sender.js';
import { FileAdmission } from './file-admission.js';
import { listenBootHttp } from './server.js';

// Through a real listener: the fast path needs @hono/node-server's response object (app.request has none).
const dir = mkdtempSync(join(tmpdir(), 'ul-boot-files-'));
const boot = join(dir, 'boot');
const image = randomBytes(2 * CHUNK_BYTES + 777);
// Two per address: a keep-alive client's next request can arrive before the previous response's 'close' gave its slot back.
const admission = new FileAdmission({ max: 4, perAddress: 2 });
let server: Server;
let port = 0;

beforeAll(async () => {
  mkdirSync(join(boot, 'images'), { recursive: true });
  writeFileSync(join(boot, 'images', 'disk.raw'), image);
  writeFileSync(join(dir, 'secret'), 'outside the boot directory');
  symlinkSync(join(dir, 'secret'), join(boot, 'escape'));
  const app = new Hono();
  app.onError((err, c) => {
    const r = errorResponse(err);
    return c.json(r.body, r.status as 400, r.headers);
  });
  registerBootFiles(app, { o: { bootDir: boot, ipxeDir: join(dir, 'ipxe') }, log: silentLogger, fileAdmission: admission, remote: BootHttp.prototype.remote } as unknown as BootHttp);
  server = await listenBootHttp(app, { hostname: '127.0.0.1', port: 0, logger: silentLogger });
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

function fetch(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
    })
      .on('error', reject)
      .end();
  });
}

describe('boot files over HTTP (the image path)', () => {
  it('answers 503 + Retry-After while every download slot is taken, and serves again once one frees', async () => {
    const held: { release: () => void }[] = [];
    // Other machines hold every slot (one each).
    for (let s = admission.enter('198.18.0.10'); 'release' in s; s = admission.enter(`198.18.0.${10 + held.length}`)) held.push(s);
    expect(held.length).toBe(4);
    expect(held.length).toBeGreaterThan(0);
    const busy = await fetch('/files/images/disk.raw');
    expect(busy.status).toBe(503);
    expect(Number(busy.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(busy.headers.connection).toBe('close');
    held.pop()!.release();
    const r = await fetch('/files/images/disk.raw');
    expect(r.status).toBe(200);
    expect(r.body.equals(image)).toBe(true);
    for (const h of held) h.release();
    // The served download gave its slot back when its response closed.
    await expect.poll(() => admission.running).toBe(0);
  });

  it("turns one address away past its share of the slots while others' are free, and serves it once its own download ends", async () => {
    // An address holds at most two of the four. This client (127.0.0.1) already has two downloads running.
    const own = [admission.enter('127.0.0.1'), admission.enter('127.0.0.1')] as { release: () => void }[];
    expect(own.every((s) => 'release' in s)).toBe(true);
    const busy = await fetch('/files/images/disk.raw');
    expect(busy.status).toBe(503);
    expect(Number(busy.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(admission.running).toBe(2); // two slots were free: the share, not the total, refused it
    const other = admission.enter('198.18.0.20'); // another machine still gets in
    expect('release' in other).toBe(true);
    (other as { release: () => void }).release();
    own[0]!.release();
    const r = await fetch('/files/images/disk.raw');
    expect(r.status).toBe(200);
    expect(r.body.equals(image)).toBe(true);
    own[1]!.release();
    await expect.poll(() => admission.running).toBe(0);
  });

  it('serves a whole image byte for byte and says it takes ranges', async () => {
    const r = await fetch('/files/images/disk.raw');
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(image.length));
    expect(r.headers['accept-ranges']).toBe('bytes');
    expect(r.body.equals(image)).toBe(true);
  });

  it("resumes at a byte as the deploy's curl -C does: 206 with the rest of the file", async () => {
    const at = CHUNK_BYTES + 3;
    const r = await fetch('/files/images/disk.raw', { range: `bytes=${at}-` });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes ${at}-${image.length - 1}/${image.length}`);
    expect(r.headers['content-length']).toBe(String(image.length - at));
    expect(r.body.equals(image.subarray(at))).toBe(true);
    const mid = await fetch('/files/images/disk.raw', { range: 'bytes=10-19' });
    expect(mid.status).toBe(206);
    expect(mid.body.equals(image.subarray(10, 20))).toBe(true);
  });

  it('answers 416 for a range past the end and refuses a symlink out of the boot directory, with or without a range', async () => {
    expect((await fetch('/files/images/disk.raw', { range: `bytes=${image.length}-` })).status).toBe(416);
    for (const headers of [{}, { range: 'bytes=0-' }]) {
      const r = await fetch('/files/escape', headers);
      expect(r.status).toBe(404);
      expect(r.body.toString()).not.toContain('outside');
    }
  });

  it('never writes a 400 into an image on its way: a bad request pipelined behind the GET ends the connection', async () => {
    const sock = connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    sock.on('data', (d: Buffer) => parts.push(d));
    const closed = new Promise((r) => sock.once('close', r));
    sock.on('error', () => undefined);
    sock.write(`GET /files/images/disk.raw HTTP/1.1\r\nhost: x\r\n\r\n`);
    // Once the response is on its way (before, Node answers the garbage with a 400 of its own).
    sock.once('data', () => sock.write('GARBAGE \x01\x02 NOT HTTP\r\n\r\n'));
    await closed;
    const all = Buffer.concat(parts);
    const headEnd = all.indexOf('\r\n\r\n');
    expect(all.subarray(0, headEnd).toString()).toMatch(/^HTTP\/1\.1 200 /);
    // Whatever arrived after the head is a prefix of the image (cut or whole), never a 400 spliced in.
    // Only once the whole image is out may the garbage get its 400 (the next response on the connection).
    const body = all.subarray(headEnd + 4, headEnd + 4 + image.length);
    expect(body.equals(image.subarray(0, body.length))).toBe(true);
    const after = all.subarray(headEnd + 4 + image.length).toString('latin1');
    if (after) expect(after).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
  });
});
