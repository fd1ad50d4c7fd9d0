import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tftpGet, TftpClientError } from '../../scripts/bench/tftp-client.js';
import { encodeAck, encodeRequest, Opcode, parsePacket, type Packet } from './packet.js';
import { TftpServer, type TftpTransferEvent } from './server.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    b[i] = x >> 16;
  }
  return b;
}

/** Send raw datagrams from one socket and collect what comes back. */
/**
 * Sends `packets` and collects replies for `waitMs`; with `first`, the wait starts only once a reply
 * satisfying it arrived (bounded at 10 s), so a loaded machine cannot make a test miss a slow first reply.
 */
async function rawExchange(port: number, packets: Buffer[], waitMs = 300, first?: (p: Packet) => boolean): Promise<{ packet: Packet; from: number }[]> {
  const sock: Socket = createSocket('udp4');
  const got: { packet: Packet; from: number }[] = [];
  sock.on('message', (m, r) => {
    const p = parsePacket(m);
    if (p.ok) got.push({ packet: p.packet, from: r.port });
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  for (const p of packets) sock.send(p, port, '127.0.0.1');
  for (const end = Date.now() + 10_000; first && !got.some((g) => first(g.packet)) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, waitMs));
  sock.close();
  return got;
}

// The whole suite runs with both settings: 'js' (everything on the event loop) and 'auto' (streamed files
// on the native thread when the addon is built; small files from the in-memory cache on the JS path).
describe.each([{ dataPath: 'js' as const }, { dataPath: 'auto' as const }])('TftpServer (dataPath $dataPath)', ({ dataPath }) => {
  let dir: string;
  let server: TftpServer;
  let port: number;
  const events: TftpTransferEvent[] = [];
  const files: Record<string, Buffer> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ul-tftp-srv-'));
    const root = join(dir, 'root');
    mkdirSync(join(root, 'efi'), { recursive: true });
    files['undionly.kpxe'] = pattern(74_213, 1);
    files['efi/ipxe.efi'] = pattern(1_024_000, 2);
    files['big.bin'] = pattern(12 * 1024 * 1024 + 17, 3); // above the cache limit below: streamed
    files['exact.bin'] = pattern(1468 * 4, 4);
    for (const [n, b] of Object.entries(files)) writeFileSync(join(root, n), b);
    writeFileSync(join(dir, 'secret'), 'top secret');
    symlinkSync(join(dir, 'secret'), join(root, 'leak'));
    server = new TftpServer({
      root,
      address: '127.0.0.1',
      port: 0,
      cacheMaxFileBytes: 2 * 1024 * 1024,
      dataPath,
      timeoutMs: 200,
      retries: 3,
      onTransfer: (e) => events.push(e),
    });
    port = (await server.start()).port;
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('validates options at construction', () => {
    expect(() => new TftpServer({ root: '' })).toThrow(/root/);
    expect(() => new TftpServer({ root: '/tmp', maxBlksize: 70000 })).toThrow(/maxBlksize/);
    expect(() => new TftpServer({ root: '/tmp', address: 'not-an-ip' })).toThrow(/address/);
    expect(() => new TftpServer({ root: '/tmp', port: -1 })).toThrow(/port/);
  });

  it('serves files in plain RFC 1350 and with options, identical bytes', async () => {
    for (const [name, options] of [
      ['undionly.kpxe', {}],
      ['/undionly.kpxe', { blksize: 1468, tsize: 0 }],
      ['efi/ipxe.efi', { blksize: 1468, windowsize: 8 }],
      ['exact.bin', { blksize: 1468 }],
      ['big.bin', { blksize: 1468, windowsize: 16, tsize: 0 }],
    ] as const) {
      const r = await tftpGet({ host: '127.0.0.1', port, file: name, options });
      const want = files[name.replace(/^\//, '')]!;
      expect(sha(r.data), name).toBe(sha(want));
      if ('tsize' in options) expect(r.oack?.tsize).toBe(String(want.length));
      if (Object.keys(options).length === 0) expect(r.oack).toBeNull();
    }
    // the server saw every final ACK: five complete transfers, no errors
    await expect.poll(() => server.stats().active).toBe(0);
    expect(server.stats()).toMatchObject({ completed: 5, errors: 0 });
    expect(events.map((e) => e.outcome)).toEqual(['complete', 'complete', 'complete', 'complete', 'complete']);
    expect(events[4]).toMatchObject({ file: 'big.bin', bytes: files['big.bin']!.length, blksize: 1468, windowsize: 16 });
    // small files (undionly.kpxe twice: the second from the cache) on the JS path, big.bin streamed natively
    // when the addon is loaded
    expect(server.stats().cacheHits).toBeGreaterThan(0);
    const streamed = server.dataPath === 'native' ? 'native' : 'js';
    expect(events.map((e) => [e.file, e.dataPath])).toEqual([
      ['undionly.kpxe', 'js'],
      ['/undionly.kpxe', 'js'],
      ['efi/ipxe.efi', 'js'],
      ['exact.bin', 'js'],
      ['big.bin', streamed],
    ]);
  });

  it('clamps blksize to maxBlksize in the OACK', async () => {
    const r = await tftpGet({ host: '127.0.0.1', port, file: 'undionly.kpxe', options: { blksize: 65464 } });
    expect(r.oack).toEqual({ blksize: '1468' });
    expect(sha(r.data)).toBe(sha(files['undionly.kpxe']!));
  });

  it('converts netascii', async () => {
    const r = await tftpGet({ host: '127.0.0.1', port, file: 'undionly.kpxe', mode: 'netascii' });
    const src = files['undionly.kpxe']!;
    let crlf = 0;
    for (const b of src) if (b === 10 || b === 13) crlf++;
    expect(r.bytes).toBe(src.length + crlf);
  });

  it('reports a UEFI size probe as such, not as an error', async () => {
    const before = server.stats();
    const r = await tftpGet({ host: '127.0.0.1', port, file: 'efi/ipxe.efi', options: { tsize: 0, blksize: 1468 }, abortAfterOack: { code: 8, message: 'User aborted the transfer' } });
    expect(r.oack?.tsize).toBe(String(files['efi/ipxe.efi']!.length));
    await expect.poll(() => server.stats().sizeProbes).toBe(before.sizeProbes + 1);
    expect(server.stats().errors).toBe(before.errors);
    expect(events.at(-1)).toMatchObject({ file: 'efi/ipxe.efi', outcome: 'size-probe' });
  });

  it('refuses traversal and escaping symlinks without leaking paths', async () => {
    for (const [file, code] of [
      ['../secret', 2],
      ['leak', 2],
      ['efi\\..\\..\\secret', 2],
      ['nope.bin', 1],
      ['efi', 1],
    ] as const) {
      const err = await tftpGet({ host: '127.0.0.1', port, file }).then(
        () => null,
        (e: TftpClientError) => e,
      );
      expect(err, file).toBeInstanceOf(TftpClientError);
      expect(err!.code, file).toBe(code);
      expect(err!.message).not.toMatch(/secret|\/tmp|root|ENOENT/);
    }
    expect(events.find((e) => e.file === 'leak')).toMatchObject({ outcome: 'error' });
  });

  it('refuses write requests with an error packet and answers malformed requests', async () => {
    const wrq = encodeRequest(Opcode.WRQ, 'x.bin');
    const got = await rawExchange(port, [wrq]);
    expect(got[0]?.packet).toMatchObject({ op: Opcode.ERROR, code: 2 });
    const bad = await rawExchange(port, [Buffer.from([0, 1, 0x61, 0x62]), Buffer.from([0, 99, 1, 2]), Buffer.from([0, 1, 0x61, 0, 0x6d, 0x61, 0x69, 0x6c, 0])]);
    expect(bad.map((g) => g.packet.op === Opcode.ERROR && g.packet.code).sort()).toEqual([4, 4, 4]);
    const silent = await rawExchange(port, [Buffer.from([0]), encodeAck(3), Buffer.alloc(0)]);
    expect(silent).toEqual([]);
  });

  it('sends each transfer from its own ephemeral port, and ignores a retransmitted RRQ', async () => {
    const rrq = encodeRequest(Opcode.RRQ, 'undionly.kpxe');
    const got = await rawExchange(port, [rrq, rrq], 100, (p) => p.op === Opcode.DATA);
    // one transfer: DATA 1 (once, or again after a timeout) from a port that is not the server's
    const data = got.filter((g) => g.packet.op === Opcode.DATA);
    expect(data.length).toBeGreaterThan(0);
    expect(new Set(data.map((d) => d.from)).size).toBe(1);
    expect(data[0]!.from).not.toBe(port);
    expect(data.every((d) => d.packet.op === Opcode.DATA && d.packet.block === 1)).toBe(true);
    expect(server.stats().duplicateRequests).toBeGreaterThan(0);
  });

  it('gives up on a silent client after the retries and counts the timeout', async () => {
    const before = server.stats().timeouts;
    const rrq = encodeRequest(Opcode.RRQ, 'undionly.kpxe');
    const got = await rawExchange(port, [rrq], 200 * 6);
    // 1 + 3 retries
    expect(got.filter((g) => g.packet.op === Opcode.DATA).length).toBe(4);
    await expect.poll(() => server.stats().timeouts).toBe(before + 1);
  });

  it('serves hundreds of concurrent transfers', async () => {
    const names = ['undionly.kpxe', 'efi/ipxe.efi', 'exact.bin'];
    const jobs = Array.from({ length: 300 }, (_, i) => {
      const name = names[i % names.length]!;
      return tftpGet({ host: '127.0.0.1', port, file: name, options: { blksize: 1468, windowsize: i % 2 ? 8 : 1 }, timeoutMs: 2000, retries: 10 }).then((r) => {
        const want = files[name]!;
        if (sha(r.data) === sha(want)) return null;
        // A wrong transfer says how it is wrong (it was seen only on loaded hosts: which file, window, where).
        let at = 0;
        while (at < Math.min(r.data.length, want.length) && r.data[at] === want[at]) at++;
        return `${name} windowsize ${i % 2 ? 8 : 1}: ${r.data.length} bytes for ${want.length}, first difference at byte ${at} (block ${Math.floor(at / 1468) + 1} of ${r.blocks}), oack ${JSON.stringify(r.oack)}`;
      });
    });
    const before = server.stats();
    const wrong = (await Promise.all(jobs)).filter((x) => x !== null);
    expect(wrong).toEqual([]);
    await expect.poll(() => server.stats().active, { timeout: 30_000 }).toBe(0);
    // Every transfer ended on the server: completed (final ACK received) or, when the final ACK was lost
    // (300 transfers on a loaded host overflow loopback socket buffers; the client has all its data and has
    // gone, as RFC 1350 allows), failed after retransmitting the last block (timeout, or the port
    // unreachable once the client's socket is closed). A client that retransmits its request after its
    // transfer finished also starts a transfer nobody waits for. What the 300 clients got is checked above.
    const after = server.stats();
    const ended = (t: typeof after) => t.completed + t.errors + t.sizeProbes;
    expect(ended(after) - ended(before)).toBeGreaterThanOrEqual(300);
    expect(after.completed - before.completed).toBeGreaterThan(0);
  });

  it('keeps serving after junk on the server port', async () => {
    const junk = Array.from({ length: 200 }, (_, i) => Buffer.from([0, i % 8, ...Array.from({ length: i % 30 }, (_, j) => (i * j) & 0xff)]));
    await rawExchange(port, junk, 200);
    const r = await tftpGet({ host: '127.0.0.1', port, file: 'undionly.kpxe' });
    expect(sha(r.data)).toBe(sha(files['undionly.kpxe']!));
    expect(server.stats().malformed).toBeGreaterThan(0);
  });
});

describe('TftpServer at maxTransfers', () => {
  it('drops a request unanswered (no error packet), and the client gets its file on a retransmitted RRQ', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ul-tftp-shed-'));
    const file = pattern(20_000, 9);
    writeFileSync(join(dir, 'undionly.kpxe'), file);
    const server = new TftpServer({ root: dir, address: '127.0.0.1', port: 0, maxTransfers: 1, timeoutMs: 200, retries: 3 });
    const { port } = await server.start();
    try {
      // A silent client holds the only transfer until the server gives up on it (1 + 3 sends of block 1).
      const holder = rawExchange(port, [encodeRequest(Opcode.RRQ, 'undionly.kpxe')], 200 * 6);
      await expect.poll(() => server.stats().active).toBe(1);
      const got = await tftpGet({ host: '127.0.0.1', port, file: 'undionly.kpxe', timeoutMs: 300, retries: 20 });
      expect(sha(got.data)).toBe(sha(file));
      const st = server.stats();
      expect(st.shed).toBeGreaterThan(0);
      expect(st.refused).toBe(0);
      await holder;
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
