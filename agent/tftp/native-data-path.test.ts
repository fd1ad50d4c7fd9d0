import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tftpGet } from '../../scripts/bench/tftp-client.js';
import { loadNativeAddon, nativeAddon, NativeTransfer, selectDataPath, toTransferResult, type NativeAddon, type NativeResult, type NativeStartOptions } from './native-data-path.js';
import { encodeAck, encodeError, encodeOack, encodeRequest, Opcode, parsePacket, type Packet } from './packet.js';
import { TftpServer, type TftpTransferEvent } from './server.js';
import type { TransferResult } from './transfer.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const openFds = () => readdirSync('/proc/self/fd').length;

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

describe('data path selection (fallback to JS)', () => {
  const fakeAddon: NativeAddon = { start: () => ({}), cancel: () => undefined };

  it('uses the JS data path when asked, without loading the addon', () => {
    let loaded = false;
    expect(selectDataPath('js', () => ((loaded = true), { ok: true, addon: fakeAddon, path: 'x' }))).toEqual({ path: 'js' });
    expect(loaded).toBe(false);
  });

  it('falls back to JS with a warning when the addon is missing or broken', () => {
    const missing = loadNativeAddon(['./no-such-dir/underlay_tftp.node']);
    expect(missing).toMatchObject({ ok: false, reason: expect.stringMatching(/not built/) });
    expect(selectDataPath('auto', () => missing)).toEqual({ path: 'js', warning: (missing as { reason: string }).reason });
    // A file that exists but is not the addon (this very module's sibling source file).
    const wrong = loadNativeAddon(['./packet.ts']);
    expect(wrong.ok).toBe(false);
  });

  it('uses native when the addon loads', () => {
    expect(selectDataPath('auto', () => ({ ok: true, addon: fakeAddon, path: 'x' }))).toEqual({ path: 'native', addon: fakeAddon });
  });

  it('maps native outcomes to the JS path results', () => {
    const raw: NativeResult = { outcome: 'complete', ackedBlocks: 3, retransmits: 1, duplicateAcks: 2, packetsSent: 5, malformed: 0, inOack: false };
    expect(toTransferResult(raw, 1000, 512, undefined)).toEqual({ outcome: 'complete', bytes: 1000, retransmits: 1, duplicateAcks: 2 });
    const probe = { ...raw, outcome: 'client-error' as const, ackedBlocks: 0, inOack: true, clientCode: 8, clientMessage: 'tsize' };
    expect(toTransferResult(probe, 1000, 512, undefined).outcome).toBe('size-probe');
    expect(toTransferResult({ ...probe, inOack: false, ackedBlocks: 1 }, 1000, 512, undefined)).toMatchObject({ outcome: 'error', bytes: 512, error: 'client error 8: tsize' });
    expect(toTransferResult({ ...raw, outcome: 'timeout', ackedBlocks: 1 }, 1000, 512, undefined)).toMatchObject({ outcome: 'error', error: 'timeout' });
    expect(toTransferResult({ ...raw, outcome: 'socket-error', errno: 111 }, 1000, 512, undefined).error).toBe('socket error: ECONNREFUSED');
    expect(toTransferResult({ ...raw, outcome: 'read-error', errno: 0 }, 1000, 512, undefined).error).toBe('read error: file shrank during transfer');
    expect(toTransferResult({ ...raw, outcome: 'cancelled' }, 1000, 512, 'server stopping').error).toBe('server stopping');
  });
});

/** A raw TFTP client socket: records every packet, answers nothing by itself. */
class RawPeer {
  /** record: keep every packet in `packets` (off for transfers of 70k packets). */
  constructor(private readonly record = true) {}
  readonly sock: Socket = createSocket('udp4');
  readonly packets: { packet: Packet; from: number }[] = [];
  private waiters: (() => void)[] = [];
  serverPort = 0;
  onPacket: (p: Packet) => void = () => undefined;

  async bind(): Promise<number> {
    this.sock.on('message', (m, r) => {
      const p = parsePacket(m);
      if (!p.ok) return;
      this.serverPort = r.port;
      if (this.record) this.packets.push({ packet: p.packet, from: r.port });
      this.onPacket(p.packet);
      for (const w of this.waiters.splice(0)) w();
    });
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', r));
    return this.sock.address().port;
  }

  send(b: Buffer): void {
    this.sock.send(b, this.serverPort, '127.0.0.1');
  }

  /** Resolves once `pred` holds over the packets received so far. */
  async until(pred: (ps: Packet[]) => boolean): Promise<void> {
    while (!pred(this.packets.map((p) => p.packet))) await new Promise<void>((r) => this.waiters.push(r));
  }

  close(): Promise<void> {
    return new Promise((r) => this.sock.close(() => r()));
  }
}

const ready = nativeAddon();

describe('native data path (real sockets)', () => {
  let dir: string;
  const fds: number[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ul-tftp-native-'));
  });
  afterAll(() => {
    for (const fd of fds.splice(0)) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads (npm run build builds it)', () => {
    expect(ready.ok ? 'loaded' : ready.reason).toBe('loaded');
  });

  const addon = () => (ready as { addon: NativeAddon }).addon;

  function file(name: string, bytes: Buffer): number {
    writeFileSync(join(dir, name), bytes);
    const fd = openSync(join(dir, name), 'r');
    fds.push(fd);
    return fd;
  }

  /** Start a native transfer to the client at 127.0.0.1:clientPort; resolves with its result. */
  function transfer(clientPort: number, o: Partial<NativeStartOptions> & Pick<NativeStartOptions, 'fileFd' | 'size'>, started?: (t: NativeTransfer) => void) {
    return new Promise<{ result: TransferResult; raw: NativeResult }>((resolve) => {
      const t = new NativeTransfer(
        addon(),
        { address: '127.0.0.1', clientAddress: '127.0.0.1', clientPort, blksize: 512, windowsize: 1, timeoutMs: 1000, retries: 5, spinUs: 20, oack: null, ...o },
        (result, raw) => resolve({ result, raw }),
      );
      started?.(t);
    });
  }

  /** Collect DATA payloads in block order (absolute numbering, rollover-aware). */
  function assemble(peer: RawPeer): Buffer {
    const byBlock = new Map<number, Buffer>();
    let abs = 0;
    let last = 0;
    for (const { packet } of peer.packets) {
      if (packet.op !== Opcode.DATA) continue;
      // absolute block: the one nearest after the previous highest
      const cand = abs - (abs & 0xffff) + packet.block;
      const b = cand + (cand < abs - 0x8000 ? 0x10000 : 0);
      if (b > last) last = b;
      abs = Math.max(abs, b);
      byBlock.set(b, Buffer.from(packet.data));
    }
    return Buffer.concat(Array.from({ length: last }, (_, i) => byBlock.get(i + 1)!));
  }

  it.skipIf(!ready.ok)('lock-step: OACK, ACK 0, byte-exact content, duplicate ACKs ignored', async () => {
    const bytes = pattern(100_000, 1);
    const peer = new RawPeer();
    const port = await peer.bind();
    peer.onPacket = (p) => {
      if (p.op === Opcode.OACK) peer.send(encodeAck(0));
      if (p.op === Opcode.DATA) {
        peer.send(encodeAck(p.block));
        if (p.block === 5) peer.send(encodeAck(p.block)); // duplicate: must not cause a resend
      }
    };
    const { result, raw } = await transfer(port, { fileFd: file('a.bin', bytes), size: bytes.length, oack: encodeOack([['blksize', '512']]) });
    expect(result).toMatchObject({ outcome: 'complete', bytes: bytes.length, retransmits: 0, duplicateAcks: 1 });
    expect(peer.packets[0]!.packet.op).toBe(Opcode.OACK);
    const data = peer.packets.filter((p) => p.packet.op === Opcode.DATA);
    expect(data.length).toBe(Math.floor(bytes.length / 512) + 1); // each block exactly once
    expect(sha(assemble(peer))).toBe(sha(bytes));
    expect(raw.packetsSent).toBe(data.length + 1);
    await peer.close();
  });

  it.skipIf(!ready.ok)('windowed (windowsize 8): byte-exact, an ACK inside the window resends from there', async () => {
    const bytes = pattern(512 * 40, 2); // a multiple of blksize: ends with an empty block
    const peer = new RawPeer();
    const port = await peer.bind();
    let gapDone = false;
    let count = 0;
    peer.onPacket = (p) => {
      if (p.op !== Opcode.DATA) return;
      count++;
      if (p.block === 12 && !gapDone) {
        gapDone = true;
        peer.send(encodeAck(11)); // "lost" 12..16: the server resends from 12
        return;
      }
      if (p.block % 8 === 0 || p.data.length < 512) peer.send(encodeAck(p.block));
    };
    const { result } = await transfer(port, { fileFd: file('w.bin', bytes), size: bytes.length, windowsize: 8 });
    expect(result).toMatchObject({ outcome: 'complete', bytes: bytes.length });
    expect(result.retransmits).toBeGreaterThan(0);
    expect(count).toBeGreaterThan(41);
    expect(sha(assemble(peer))).toBe(sha(bytes));
    await peer.close();
  });

  it.skipIf(!ready.ok)('a dropped ACK makes the server retransmit after its timeout', async () => {
    const bytes = pattern(5000, 3);
    const peer = new RawPeer();
    const port = await peer.bind();
    let dropped = false;
    peer.onPacket = (p) => {
      if (p.op !== Opcode.DATA) return;
      if (p.block === 3 && !dropped) {
        dropped = true; // the ACK for block 3 is "lost"
        return;
      }
      peer.send(encodeAck(p.block));
    };
    const { result } = await transfer(port, { fileFd: file('d.bin', bytes), size: bytes.length, timeoutMs: 50 });
    expect(result).toMatchObject({ outcome: 'complete', bytes: bytes.length, retransmits: 1 });
    const threes = peer.packets.filter((p) => p.packet.op === Opcode.DATA && p.packet.block === 3);
    expect(threes.length).toBe(2);
    expect(sha(assemble(peer))).toBe(sha(bytes));
    await peer.close();
  });

  it.skipIf(!ready.ok)('a silent client: resends, then a timeout outcome after the retries', async () => {
    const bytes = pattern(3000, 4);
    const peer = new RawPeer();
    const port = await peer.bind();
    const { result } = await transfer(port, { fileFd: file('t.bin', bytes), size: bytes.length, timeoutMs: 20, retries: 3 });
    expect(result).toMatchObject({ outcome: 'error', error: 'timeout', bytes: 0, retransmits: 3 });
    expect(peer.packets.filter((p) => p.packet.op === Opcode.DATA && p.packet.block === 1).length).toBe(4);
    await peer.close();
  });

  it.skipIf(!ready.ok)('ERROR 8 after the OACK is a size probe; ERROR mid-transfer is a client abort', async () => {
    const bytes = pattern(10_000, 5);
    const fd = file('e.bin', bytes);
    const probe = new RawPeer();
    const pport = await probe.bind();
    probe.onPacket = (p) => p.op === Opcode.OACK && probe.send(encodeError(8, 'tsize only'));
    const r1 = await transfer(pport, { fileFd: fd, size: bytes.length, oack: encodeOack([['tsize', String(bytes.length)]]) });
    expect(r1.result).toMatchObject({ outcome: 'size-probe', bytes: 0 });
    await probe.close();

    const mid = new RawPeer();
    const mport = await mid.bind();
    mid.onPacket = (p) => {
      if (p.op === Opcode.DATA) mid.send(p.block === 3 ? encodeError(8, 'changed my mind') : encodeAck(p.block));
    };
    const r2 = await transfer(mport, { fileFd: fd, size: bytes.length });
    expect(r2.result).toMatchObject({ outcome: 'error', bytes: 1024, error: 'client error 8: changed my mind' });
    await mid.close();
  });

  it.skipIf(!ready.ok)('a closed client socket ends the transfer (ECONNREFUSED), not a timeout', async () => {
    const bytes = pattern(5000, 6);
    const peer = new RawPeer();
    const port = await peer.bind();
    const closed = new Promise<void>((resolve) => {
      peer.onPacket = (p) => {
        if (p.op === Opcode.DATA && p.block === 2) void peer.close().then(resolve);
        else if (p.op === Opcode.DATA) peer.send(encodeAck(p.block));
      };
    });
    const { result } = await transfer(port, { fileFd: file('c.bin', bytes), size: bytes.length, timeoutMs: 30, retries: 20 });
    await closed;
    expect(result).toMatchObject({ outcome: 'error', error: 'socket error: ECONNREFUSED', bytes: 512 });
  });

  it.skipIf(!ready.ok)('rolls block numbers over past 65535 (512 x 70,000 blocks), byte-exact', async () => {
    const bytes = pattern(512 * 70_000 + 100, 7);
    const peer = new RawPeer(false);
    const port = await peer.bind();
    const hash = createHash('sha256');
    let expected = 1;
    let inWindow = 0;
    peer.onPacket = (p) => {
      if (p.op !== Opcode.DATA || p.block !== (expected & 0xffff)) return;
      hash.update(p.data);
      expected++;
      inWindow++;
      if (inWindow === 16 || p.data.length < 512) {
        inWindow = 0;
        peer.send(encodeAck(p.block));
      }
    };
    const { result } = await transfer(port, { fileFd: file('r.bin', bytes), size: bytes.length, windowsize: 16 });
    expect(result).toMatchObject({ outcome: 'complete', bytes: bytes.length });
    expect(expected - 1).toBe(70_001);
    expect(hash.digest('hex')).toBe(sha(bytes));
    await peer.close();
  });

  it.skipIf(!ready.ok)('cancel wakes a waiting transfer at once, tells the client, frees its descriptors', async () => {
    const bytes = pattern(5000, 8);
    const fd = file('x.bin', bytes);
    const peer = new RawPeer();
    const port = await peer.bind();
    const before = openFds();
    let t!: NativeTransfer;
    // timeoutMs 255 s: only the cancel can end this transfer before the test runner gives up.
    const done = transfer(port, { fileFd: fd, size: bytes.length, timeoutMs: 255_000 }, (x) => (t = x));
    await peer.until((ps) => ps.some((p) => p.op === Opcode.DATA));
    expect(openFds()).toBe(before + 2); // the transfer socket and its cancel eventfd
    t.abort('server stopping');
    const { result } = await done;
    expect(result).toMatchObject({ outcome: 'error', error: 'server stopping' });
    await peer.until((ps) => ps.some((p) => p.op === Opcode.ERROR));
    expect(peer.packets.at(-1)!.packet).toMatchObject({ op: Opcode.ERROR, code: 0, message: 'Transfer aborted' });
    expect(openFds()).toBe(before);
    await peer.close();
  });
});

describe.skipIf(!ready.ok)('TftpServer on the native data path', () => {
  let dir: string;
  let server: TftpServer;
  let port: number;
  const events: TftpTransferEvent[] = [];
  const big = pattern(3 * 1024 * 1024 + 5, 9);
  const small = pattern(2000, 10);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ul-tftp-nsrv-'));
    writeFileSync(join(dir, 'big.bin'), big);
    writeFileSync(join(dir, 'small.bin'), small);
    server = new TftpServer({ root: dir, address: '127.0.0.1', port: 0, cacheMaxFileBytes: 0, onTransfer: (e) => events.push(e) });
    port = (await server.start()).port;
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves streamed files natively, lock-step and windowed, with stats and events', async () => {
    expect(server.dataPath).toBe('native');
    for (const windowsize of [1, 8]) {
      const r = await tftpGet({ host: '127.0.0.1', port, file: 'big.bin', options: { blksize: 1468, tsize: 0, windowsize } });
      expect(sha(r.data)).toBe(sha(big));
      expect(r.oack).toMatchObject({ blksize: '1468', tsize: String(big.length) });
    }
    await expect.poll(() => events.filter((e) => e.file === 'big.bin').length).toBe(2);
    expect(events.filter((e) => e.file === 'big.bin').map((e) => [e.outcome, e.bytes, e.windowsize])).toEqual([
      ['complete', big.length, 1],
      ['complete', big.length, 8],
    ]);
    expect(server.stats().packetsSent).toBeGreaterThan(2 * Math.ceil(big.length / 1468));
  });

  it('streams natively until maxNativeTransfers are running, then on the JS path', async () => {
    const full: TftpTransferEvent[] = [];
    const js = new TftpServer({ root: dir, address: '127.0.0.1', port: 0, cacheMaxFileBytes: 0, maxNativeTransfers: 0, onTransfer: (e) => full.push(e) });
    const jsPort = (await js.start()).port;
    try {
      expect(sha((await tftpGet({ host: '127.0.0.1', port: jsPort, file: 'big.bin', options: { blksize: 1468 } })).data)).toBe(sha(big));
      await expect.poll(() => full.length).toBe(1);
      expect(full[0]).toMatchObject({ file: 'big.bin', outcome: 'complete', dataPath: 'js' });
      expect(events.filter((e) => e.file === 'big.bin').every((e) => e.dataPath === 'native')).toBe(true);
    } finally {
      await js.stop();
    }
  });

  it('reports a size probe like the JS path', async () => {
    const before = server.stats().sizeProbes;
    await tftpGet({ host: '127.0.0.1', port, file: 'big.bin', options: { tsize: 0 }, abortAfterOack: { code: 8, message: 'probe' } }).catch(() => undefined);
    await expect.poll(() => server.stats().sizeProbes).toBe(before + 1);
  });

  it('leaks no descriptors over many transfers', async () => {
    await tftpGet({ host: '127.0.0.1', port, file: 'small.bin' }); // warm-up: lazily opened descriptors
    await expect.poll(() => server.stats().active).toBe(0);
    const before = openFds();
    for (let i = 0; i < 150; i++) {
      const r = await tftpGet({ host: '127.0.0.1', port, file: 'small.bin', options: i % 2 ? { blksize: 1468 } : {} });
      expect(r.bytes).toBe(small.length);
    }
    await expect.poll(() => server.stats().active).toBe(0);
    await expect.poll(() => openFds()).toBeLessThanOrEqual(before);
  });

  it('stop() cancels running native transfers, tells the client and closes their files', async () => {
    const fdsBefore = openFds();
    // A client that takes the OACK and block 1, then goes quiet: the transfer waits on it.
    const peer = new RawPeer();
    await peer.bind();
    peer.onPacket = (p) => {
      if (p.op === Opcode.OACK) peer.send(encodeAck(0));
    };
    peer.sock.send(encodeRequest(Opcode.RRQ, 'big.bin', 'octet', [['timeout', '255']]), port, '127.0.0.1');
    await peer.until((ps) => ps.some((p) => p.op === Opcode.DATA));
    expect(server.stats().active).toBe(1);
    await server.stop(); // returns only when the transfer has ended (the 255 s timeout would otherwise hold it)
    expect(events.at(-1)).toMatchObject({ file: 'big.bin', outcome: 'error', error: 'server stopping' });
    await peer.until((ps) => ps.some((p) => p.op === Opcode.ERROR));
    await peer.close();
    await expect.poll(() => openFds()).toBeLessThanOrEqual(fdsBefore);
  });
});
