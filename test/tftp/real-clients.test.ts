import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TftpServer, type TftpTransferEvent } from '../../agent/tftp/index.js';
import { checkPrereqs } from '../support/require.js';

/**
 * Our TFTP server against real clients (tftp-hpa, atftp, busybox) on loopback, high port.
 * Every download is compared by sha256 with the source file.
 */
const ready = checkPrereqs('tftp real clients', { commands: ['tftp', 'atftp', 'busybox'] });

type Run = { code: number; stdout: string; stderr: string };
function run(cmd: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    // The kill timeout only guards against a hung client; it is not an assertion.
    execFile(cmd, args, { cwd, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function randomFile(path: string, size: number, seed: number): void {
  const b = Buffer.allocUnsafe(size);
  let x = seed;
  for (let i = 0; i + 4 <= size; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b.writeUInt32LE(x, i);
  }
  for (let i = size - (size % 4); i < size; i++) b[i] = i & 0xff;
  writeFileSync(path, b);
}

// Every file streamed (no cache) so each client goes through the data path under test: the native one
// (the addon npm run build makes; the server's default for streamed files) and the JS one (its fallback).
const dataPaths = [
  { label: 'native data path', dataPath: 'auto', expected: 'native' },
  { label: 'JS data path', dataPath: 'js', expected: 'js' },
] as const;

describe.skipIf(!ready).each(dataPaths)('TFTP server with real clients ($label)', ({ dataPath, expected }) => {
  let dir: string;
  let root: string;
  let out: string;
  let server: TftpServer;
  let port: number;
  const events: TftpTransferEvent[] = [];
  const BIG = 65535 * 512 + 1_000_003; // > 65535 blocks at blksize 512: needs rollover
  const client = {
    hpa: (remote: string, local: string) => run('tftp', ['-m', 'octet', '127.0.0.1', String(port), '-c', 'get', remote, local], out),
    atftp: (remote: string, local: string, opts: string[] = []) =>
      run('atftp', [...opts.flatMap((o) => ['--option', o]), '-g', '-r', remote, '-l', local, '127.0.0.1', String(port)], out),
    busybox: (remote: string, local: string, blksize = 1468) =>
      run('busybox', ['tftp', '-g', '-b', String(blksize), '-r', remote, '-l', local, '127.0.0.1', String(port)], out),
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ul-tftp-e2e-'));
    root = join(dir, 'root');
    out = join(dir, 'out');
    mkdirSync(join(root, 'efi'), { recursive: true });
    mkdirSync(out);
    const ipxe = '/usr/lib/ipxe/undionly.kpxe';
    if (existsSync(ipxe)) writeFileSync(join(root, 'undionly.kpxe'), readFileSync(ipxe));
    else randomFile(join(root, 'undionly.kpxe'), 74_213, 1);
    randomFile(join(root, 'efi', 'ipxe.efi'), 1_048_576, 2); // exact multiple of 512: ends with an empty block
    randomFile(join(root, 'big.bin'), BIG, 3);
    writeFileSync(join(dir, 'secret'), 'do not serve');
    symlinkSync(join(dir, 'secret'), join(root, 'escape'));
    server = new TftpServer({ root, address: '127.0.0.1', port: 0, cacheMaxFileBytes: 0, dataPath, onTransfer: (e) => events.push(e) });
    port = (await server.start()).port;
    expect(server.dataPath).toBe(expected);
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('tftp-hpa (RFC 1350, blksize 512) downloads the iPXE binary, with and without a leading slash', async () => {
    for (const remote of ['undionly.kpxe', '/undionly.kpxe']) {
      const local = join(out, `hpa-${remote.replace(/\//g, '_')}`);
      const r = await client.hpa(remote, local);
      expect(r.code, r.stderr).toBe(0);
      expect(sha(local)).toBe(sha(join(root, 'undionly.kpxe')));
    }
  });

  it('atftp negotiates blksize 1468, tsize and windowsize 8', async () => {
    for (const [i, opts] of [
      ['blksize 1468', 'tsize 0'],
      ['blksize 1468', 'tsize 0', 'windowsize 8'],
      ['blksize 8', 'windowsize 16'],
      ['blksize 65464', 'timeout 2'],
    ].entries()) {
      const local = join(out, `atftp-${i}`);
      const r = await client.atftp('efi/ipxe.efi', local, opts);
      expect(r.code, `${opts.join(',')}: ${r.stderr}`).toBe(0);
      expect(sha(local)).toBe(sha(join(root, 'efi', 'ipxe.efi')));
    }
    const wnd = events.filter((e) => e.file === 'efi/ipxe.efi' && e.windowsize === 8);
    expect(wnd.at(-1)).toMatchObject({ outcome: 'complete', blksize: 1468, bytes: 1_048_576 });
    const clamped = events.filter((e) => e.file === 'efi/ipxe.efi').at(-1);
    expect(clamped?.blksize).toBe(1468); // 65464 asked, clamped to maxBlksize
  });

  it('busybox tftp downloads with -b 1468 and -b 512', async () => {
    for (const b of [1468, 512]) {
      const local = join(out, `bb-${b}`);
      const r = await client.busybox('efi/ipxe.efi', local, b);
      expect(r.code, r.stderr).toBe(0);
      expect(sha(local)).toBe(sha(join(root, 'efi', 'ipxe.efi')));
    }
  });

  it('rolls block numbers over past 65535 with real clients at blksize 512', async () => {
    const want = sha(join(root, 'big.bin'));
    const hpa = join(out, 'big-hpa');
    const r1 = await client.hpa('big.bin', hpa);
    expect(r1.code, r1.stderr).toBe(0);
    expect(statSync(hpa).size).toBe(BIG);
    expect(sha(hpa)).toBe(want);

    const bb = join(out, 'big-bb');
    const r2 = await client.busybox('big.bin', bb, 512);
    expect(r2.code, r2.stderr).toBe(0);
    expect(sha(bb)).toBe(want);

    const at = join(out, 'big-atftp');
    const r3 = await client.atftp('big.bin', at, ['blksize 512', 'windowsize 8']);
    expect(r3.code, r3.stderr).toBe(0);
    expect(sha(at)).toBe(want);

    const big = events.filter((e) => e.file === 'big.bin');
    expect(big.map((e) => e.outcome)).toEqual(['complete', 'complete', 'complete']);
    expect(big.every((e) => e.bytes === BIG && e.blksize === 512)).toBe(true);
  });

  it('refuses traversal, absolute escapes, backslashes and escaping symlinks', async () => {
    const before = server.stats().refused;
    const attempts = ['../secret', '../../../../etc/passwd', 'efi/../../secret', 'escape', '..\\secret', '/etc/passwd'];
    for (const [i, remote] of attempts.entries()) {
      const la = join(out, `trav-a-${i}`);
      const ra = await client.atftp(remote, la);
      expect(ra.code, remote).not.toBe(0);
      expect(ra.stderr + ra.stdout).toMatch(/Access violation|File not found/);
      expect(existsSync(la) ? statSync(la).size : 0).toBe(0);
      const lb = join(out, `trav-b-${i}`);
      const rb = await client.busybox(remote, lb);
      expect(rb.code, remote).not.toBe(0);
      expect(existsSync(lb) ? statSync(lb).size : 0).toBe(0);
      const lh = join(out, `trav-h-${i}`);
      const rh = await client.hpa(remote, lh);
      expect(rh.stderr + rh.stdout).toMatch(/Error code [12]/);
      expect(existsSync(lh) ? statSync(lh).size : 0).toBe(0);
      expect(rh.stderr + rh.stdout + ra.stderr + ra.stdout).not.toContain('do not serve');
    }
    expect(server.stats().refused - before).toBe(attempts.length * 3);
  });

  it('serves many concurrent real clients', async () => {
    const N = 60;
    const jobs = Array.from({ length: N }, (_, i) => {
      const local = join(out, `conc-${i}`);
      const kind = i % 3;
      const p = kind === 0 ? client.hpa('undionly.kpxe', local) : kind === 1 ? client.atftp('efi/ipxe.efi', local, ['blksize 1468', 'windowsize 8']) : client.busybox('efi/ipxe.efi', local);
      return p.then((r) => ({ r, local, src: kind === 0 ? 'undionly.kpxe' : 'efi/ipxe.efi' }));
    });
    const results = await Promise.all(jobs);
    for (const { r, local, src } of results) {
      expect(r.code, r.stderr).toBe(0);
      expect(sha(local)).toBe(sha(join(root, src)));
    }
    expect(server.stats().active).toBe(0);
    expect(server.stats().errors).toBe(0);
  });
});
