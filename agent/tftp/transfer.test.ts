import { describe, expect, it } from 'vitest';
import { FakeClock } from './fake-clock.test-support.js';
import { encodeError, Opcode, parsePacket, type Packet } from './packet.js';
import { MemorySource, type ByteSource } from './source.js';
import { ReadTransfer, type TransferResult } from './transfer.js';

const ack = (block: number): Packet => ({ op: Opcode.ACK, block: block & 0xffff });
const err = (code: number, message = ''): Packet => ({ op: Opcode.ERROR, code, message });

function bytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

/** A transfer wired to a recording `send` and a fake clock. */
function harness(opts: { size?: number; source?: ByteSource; blksize?: number; windowsize?: number; oack?: [string, string][] | null; retries?: number }) {
  const clock = new FakeClock();
  const sent: Buffer[] = [];
  let result: TransferResult | undefined;
  const source = opts.source ?? new MemorySource(bytes(opts.size ?? 0));
  const t = new ReadTransfer({
    source,
    blksize: opts.blksize ?? 512,
    windowsize: opts.windowsize ?? 1,
    timeoutMs: 1000,
    retries: opts.retries ?? 3,
    oack: opts.oack ?? null,
    send: (p) => sent.push(Buffer.from(p)),
    onDone: (r) => (result = r),
    clock,
  });
  const decoded = () => sent.map((b) => parsePacket(b)).map((r) => (r.ok ? r.packet : undefined));
  /** DATA block numbers sent since index `from`. */
  const dataBlocks = (from = 0) =>
    decoded()
      .slice(from)
      .filter((p): p is Extract<Packet, { op: 3 }> => p?.op === Opcode.DATA)
      .map((p) => p.block);
  return { t, clock, sent, decoded, dataBlocks, result: () => result };
}

describe('ReadTransfer', () => {
  it('sends a small file lock-step and completes on the last ACK', () => {
    const h = harness({ size: 1200 });
    h.t.start();
    expect(h.dataBlocks()).toEqual([1]);
    h.t.handle(ack(1));
    h.t.handle(ack(2));
    expect(h.dataBlocks()).toEqual([1, 2, 3]);
    const last = h.decoded()[2] as Extract<Packet, { op: 3 }>;
    expect(last.data.length).toBe(1200 - 1024);
    expect(h.result()).toBeUndefined();
    h.t.handle(ack(3));
    expect(h.result()).toMatchObject({ outcome: 'complete', bytes: 1200, retransmits: 0 });
    expect(h.clock.pending).toBe(0);
  });

  it('ends a file that is a multiple of blksize with an empty block; empty file is one empty block', () => {
    const h = harness({ size: 1024 });
    h.t.start();
    h.t.handle(ack(1));
    h.t.handle(ack(2));
    const d = h.decoded()[2] as Extract<Packet, { op: 3 }>;
    expect(d.block).toBe(3);
    expect(d.data.length).toBe(0);
    h.t.handle(ack(3));
    expect(h.result()?.outcome).toBe('complete');

    const e = harness({ size: 0 });
    e.t.start();
    expect((e.decoded()[0] as Extract<Packet, { op: 3 }>).data.length).toBe(0);
    e.t.handle(ack(1));
    expect(e.result()).toMatchObject({ outcome: 'complete', bytes: 0 });
  });

  it('retransmits after a lost ACK and gives up after the retry limit', () => {
    const h = harness({ size: 2000, retries: 2 });
    h.t.start();
    h.clock.advance(999);
    expect(h.dataBlocks()).toEqual([1]);
    h.clock.advance(1);
    expect(h.dataBlocks()).toEqual([1, 1]);
    h.t.handle(ack(1)); // progress resets the retry budget
    h.clock.advance(1000);
    h.clock.advance(1000);
    expect(h.dataBlocks()).toEqual([1, 1, 2, 2, 2]);
    expect(h.result()).toBeUndefined();
    h.clock.advance(1000);
    expect(h.result()).toMatchObject({ outcome: 'error', error: 'timeout', bytes: 512, retransmits: 3 });
  });

  it('ignores duplicate ACKs in lock-step mode (no Sorcerer\'s Apprentice)', () => {
    const h = harness({ size: 5000 });
    h.t.start();
    h.t.handle(ack(1));
    h.t.handle(ack(1)); // delayed duplicate
    h.t.handle(ack(1));
    expect(h.dataBlocks()).toEqual([1, 2]);
    h.t.handle(ack(2));
    h.t.handle(ack(2));
    expect(h.dataBlocks()).toEqual([1, 2, 3]);
    for (let b = 3; b <= 10; b++) h.t.handle(ack(b));
    expect(h.result()).toMatchObject({ outcome: 'complete', duplicateAcks: 3, retransmits: 0 });
    // every block went out exactly once
    expect(h.dataBlocks()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('ignores stale and out-of-window ACKs', () => {
    const h = harness({ size: 5000 });
    h.t.start();
    h.t.handle(ack(5)); // beyond what was sent
    h.t.handle(ack(40000));
    expect(h.dataBlocks()).toEqual([1]);
    h.t.handle(ack(1));
    expect(h.dataBlocks()).toEqual([1, 2]);
  });

  it('rolls block numbers over to 0 after 65535', () => {
    const blksize = 8;
    const size = 70000 * blksize + 3; // 70001 blocks
    const src = bytes(size);
    const h = harness({ source: new MemorySource(src), blksize });
    h.t.start();
    const received: Buffer[] = [];
    let seen = 0;
    let expectBlock = 1;
    while (!h.result()) {
      const pkts = h.sent.slice(seen).map((b) => {
        const r = parsePacket(b);
        return r.ok ? r.packet : undefined;
      });
      seen = h.sent.length;
      expect(pkts.length).toBe(1);
      const d = pkts[0] as Extract<Packet, { op: 3 }>;
      expect(d.block).toBe(expectBlock & 0xffff);
      received.push(Buffer.from(d.data));
      h.t.handle(ack(d.block));
      expectBlock++;
    }
    expect(expectBlock - 1).toBe(70001);
    const blocks = h.dataBlocks();
    expect(blocks[65534]).toBe(65535);
    expect(blocks[65535]).toBe(0);
    expect(blocks[65536]).toBe(1);
    expect(Buffer.concat(received).equals(src)).toBe(true);
    expect(h.result()).toMatchObject({ outcome: 'complete', bytes: size });
  });

  it('does not confuse an ACK for block 0 after rollover with the start', () => {
    const h = harness({ size: 65537 * 8, blksize: 8, windowsize: 4 });
    h.t.start();
    // walk to the rollover in windows of 4
    let acked = 0;
    while (acked < 65532) {
      acked += 4;
      h.t.handle(ack(acked));
    }
    const before = h.dataBlocks().length;
    h.t.handle(ack(65535)); // acks 65533..65535 (3 of the 4 in flight: 65533..65536)
    const next = h.dataBlocks(0).slice(before);
    // block 65536 (wire 0) is resent first, then the window is topped up to the last block,
    // 65538 (the file is a multiple of blksize, so it ends with an empty block)
    expect(next).toEqual([0, 1, 2]);
    h.t.handle(ack(0));
    h.t.handle(ack(2));
    expect(h.result()?.outcome).toBe('complete');
  });

  it('sends windows of windowsize blocks and moves on when the last one is acknowledged', () => {
    const h = harness({ size: 512 * 20 + 10, windowsize: 8 });
    h.t.start();
    expect(h.dataBlocks()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    h.t.handle(ack(8));
    expect(h.dataBlocks().slice(8)).toEqual([9, 10, 11, 12, 13, 14, 15, 16]);
    h.t.handle(ack(16));
    expect(h.dataBlocks().slice(16)).toEqual([17, 18, 19, 20, 21]);
    h.t.handle(ack(21));
    expect(h.result()).toMatchObject({ outcome: 'complete', retransmits: 0 });
  });

  it('resends from the block after an ACK inside the window (client lost a block)', () => {
    const h = harness({ size: 512 * 30, windowsize: 8 });
    h.t.start();
    h.t.handle(ack(5)); // 6 was lost; client dropped 6..8
    expect(h.dataBlocks().slice(8)).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);
    expect(h.result()).toBeUndefined();
  });

  it('windowed: a duplicate ACK triggers at most one early resend per window; timeout resends the window', () => {
    const h = harness({ size: 512 * 30, windowsize: 4 });
    h.t.start();
    h.t.handle(ack(4));
    expect(h.dataBlocks().slice(4)).toEqual([5, 6, 7, 8]);
    h.t.handle(ack(4)); // block 5 lost: client repeats its ACK
    h.t.handle(ack(4));
    h.t.handle(ack(4));
    expect(h.dataBlocks().slice(8)).toEqual([5, 6, 7, 8]);
    h.clock.advance(1000);
    expect(h.dataBlocks().slice(12)).toEqual([5, 6, 7, 8]);
    h.t.handle(ack(8));
    expect(h.dataBlocks().slice(16)).toEqual([9, 10, 11, 12]);
  });

  it('with options: sends the OACK, retransmits it, and starts data on ACK 0', () => {
    const h = harness({ size: 3000, blksize: 1468, oack: [['blksize', '1468'], ['tsize', '3000']] });
    h.t.start();
    const first = h.decoded()[0];
    expect(first?.op).toBe(Opcode.OACK);
    expect(first?.op === Opcode.OACK && [...first.options]).toEqual([['blksize', '1468'], ['tsize', '3000']]);
    h.clock.advance(1000);
    expect(h.decoded()[1]?.op).toBe(Opcode.OACK);
    h.t.handle(ack(1)); // not ACK 0: ignored
    expect(h.dataBlocks()).toEqual([]);
    h.t.handle(ack(0));
    expect(h.dataBlocks()).toEqual([1]);
    h.t.handle(ack(1));
    h.t.handle(ack(2));
    h.t.handle(ack(3));
    expect(h.result()).toMatchObject({ outcome: 'complete', bytes: 3000 });
  });

  it('classifies error 8 or 0 right after the OACK as a size probe', () => {
    for (const code of [8, 0]) {
      const h = harness({ size: 3000, oack: [['tsize', '3000']] });
      h.t.start();
      h.t.handle(err(code, 'User aborted the transfer'));
      expect(h.result()).toMatchObject({ outcome: 'size-probe', bytes: 0 });
      expect(h.result()?.error).toBeUndefined();
      expect(h.clock.pending).toBe(0);
    }
  });

  it('reports an error from the client during data as an error', () => {
    const h = harness({ size: 3000 });
    h.t.start();
    h.t.handle(ack(1));
    h.t.handle(err(0, 'disk full'));
    expect(h.result()).toMatchObject({ outcome: 'error', bytes: 512, error: 'client error 0: disk full' });
  });

  it('abort sends an error packet and finishes once', () => {
    const h = harness({ size: 3000 });
    h.t.start();
    h.t.abort('server stopping');
    h.t.abort('again');
    const last = h.decoded().at(-1);
    expect(last?.op).toBe(Opcode.ERROR);
    expect(h.result()).toMatchObject({ outcome: 'error', error: 'server stopping' });
    h.t.handle(ack(1));
    expect(h.dataBlocks()).toEqual([1]);
    expect(Buffer.compare(h.sent.at(-1)!, encodeError(0, 'Transfer aborted'))).toBe(0);
  });

  it('waits for a slow source and then sends; a read error ends the transfer with an error packet', async () => {
    let release!: () => void;
    const data = bytes(2000);
    let loaded = false;
    const slow: ByteSource = {
      size: data.length,
      peek: (pos, len) => (loaded ? data.subarray(pos, pos + len) : undefined),
      load: () => new Promise<void>((r) => (release = () => ((loaded = true), r()))),
      close: async () => {},
    };
    const h = harness({ source: slow });
    h.t.start();
    expect(h.dataBlocks()).toEqual([]);
    release();
    await Promise.resolve();
    await Promise.resolve();
    expect(h.dataBlocks()).toEqual([1]);

    const failing: ByteSource = { size: 100, peek: () => undefined, load: () => Promise.reject(new Error('EIO')), close: async () => {} };
    const f = harness({ source: failing });
    f.t.start();
    await new Promise((r) => setImmediate(r));
    expect(f.result()).toMatchObject({ outcome: 'error', error: 'read error: EIO' });
    expect(f.decoded().at(-1)?.op).toBe(Opcode.ERROR);
  });

  it('rejects impossible parameters at construction', () => {
    expect(() => harness({ blksize: 4 })).toThrow(/blksize/);
    expect(() => harness({ windowsize: 0 })).toThrow(/windowsize/);
  });
});
