import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TftpServer } from '../../../agent/tftp/server.js';
import { bootAfterDhcp, SCRIPT_RETRIES, type FirmwareSpec } from './storm-machine.js';

const dir = mkdtempSync(join(tmpdir(), 'ul-storm-fw-'));
const bootFile = Buffer.alloc(5000, 7);
const kernel = Buffer.alloc(3000, 1);
const initrd = Buffer.alloc(4000, 2);
let tftp: TftpServer;
let http: Server;
let spec: FirmwareSpec;
/** What the HTTP server does next per path: 'busy' (503 + Retry-After), 'reset', 'wrong' (500) or serve. */
const plan: Record<string, ('busy' | 'reset' | 'wrong')[]> = {};
const hits: Record<string, number> = {};

beforeAll(async () => {
  writeFileSync(join(dir, 'undionly.kpxe'), bootFile);
  tftp = new TftpServer({ root: dir, address: '127.0.0.1', port: 0 });
  const t = await tftp.start();
  http = createServer((req, res) => {
    const path = req.url!;
    hits[path] = (hits[path] ?? 0) + 1;
    const next = plan[path]?.shift();
    if (next === 'busy') return void res.writeHead(503, { 'retry-after': '2', 'content-length': '0' }).end();
    if (next === 'reset') return void req.socket.destroy();
    if (next === 'wrong') return void res.writeHead(500, { 'content-length': '0' }).end();
    const body = path === '/files/vmlinuz' ? kernel : initrd;
    res.writeHead(200, { 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  spec = {
    server: '127.0.0.1',
    tftpPort: t.port,
    tftpSize: bootFile.length,
    blksize: 1468,
    httpBase: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    kernel: { path: '/files/vmlinuz', size: kernel.length },
    initrd: { path: '/files/initrd.img', size: initrd.length },
    sleepScale: 0.001,
  };
});
afterAll(async () => {
  await tftp.stop();
  http.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the storm machine firmware model', () => {
  it('waits out 503 + Retry-After without failing the script, and retries the fetch after a reset as the boot script does', async () => {
    for (const k of Object.keys(hits)) delete hits[k];
    plan['/files/vmlinuz'] = ['busy', 'busy'];
    // A reset on the reused keep-alive socket is retried at once on a new one (http-get.ts); a reset there too
    // fails the fetch.
    plan['/files/initrd.img'] = ['reset', 'reset'];
    const r = await bootAfterDhcp(spec, { bootFile: 'undionly.kpxe' });
    expect(r).toMatchObject({ ok: true, busy: 2, scriptRetries: 1 });
    expect(r.error).toBeUndefined();
    // 2 busy + 1 served, then after the reset the script fetches the kernel again: 4 kernel GETs.
    expect(hits['/files/vmlinuz']).toBe(4);
    expect(hits['/files/initrd.img']).toBe(3);
  });

  it('gives up after the script retries when the server keeps failing', async () => {
    plan['/files/vmlinuz'] = Array<'wrong'>(SCRIPT_RETRIES + 1).fill('wrong');
    const r = await bootAfterDhcp(spec, { bootFile: 'undionly.kpxe' });
    expect(r.ok).toBe(false);
    expect(r.scriptRetries).toBe(SCRIPT_RETRIES);
    expect(r.error).toMatch(/^http: \/files\/vmlinuz: status 500/);
  });

  it('fails the TFTP step on a file the server does not have', async () => {
    const r = await bootAfterDhcp(spec, { bootFile: 'missing.kpxe' });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/^tftp: server error 1/);
  });
});
