import { describe, expect, it } from 'vitest';
import { encodeAck, encodeData, encodeError, encodeOack, encodeRequest, Opcode, parsePacket } from './packet.js';

const raw = (...parts: (number[] | string)[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

describe('packet codec', () => {
  it('round-trips RRQ with options, lower-casing names and mode', () => {
    const buf = encodeRequest(Opcode.RRQ, 'pxelinux/undionly.kpxe', 'OCTET', [
      ['BLKSIZE', '1468'],
      ['tsize', '0'],
    ]);
    expect(buf.subarray(0, 2)).toEqual(Buffer.from([0, 1]));
    const r = parsePacket(buf);
    expect(r.ok).toBe(true);
    if (!r.ok || r.packet.op !== Opcode.RRQ) throw new Error('not an RRQ');
    expect(r.packet.filename).toBe('pxelinux/undionly.kpxe');
    expect(r.packet.mode).toBe('octet');
    expect([...r.packet.options]).toEqual([
      ['blksize', '1468'],
      ['tsize', '0'],
    ]);
  });

  it('tolerates NUL padding and a dangling option name; first duplicate wins', () => {
    const r = parsePacket(raw([0, 1], 'a.bin\0octet\0blksize\x001024\0blksize\x00512\0tsize\0'));
    expect(r.ok && r.packet.op === Opcode.RRQ && [...r.packet.options]).toEqual([['blksize', '1024']]);
    const p = parsePacket(raw([0, 1], 'a.bin\0octet\0\0\0\0'));
    expect(p.ok && p.packet.op === Opcode.RRQ && p.packet.options.size).toBe(0);
  });

  it('rejects malformed requests with a reason and the opcode', () => {
    const cases: Buffer[] = [
      raw([0, 1], 'file-without-nul'),
      raw([0, 1], 'file\0octet'), // mode not terminated
      raw([0, 1], 'file\0'), // no mode
      raw([0, 1], '\0octet\0'), // empty filename
      raw([0, 1], 'a\x01b\0octet\0'), // control char
      raw([0, 1], [0xff, 0xfe, 0], 'octet\0'), // invalid UTF-8
      raw([0, 2], 'x'.repeat(600), '\0octet\0'), // too long
    ];
    for (const c of cases) {
      const r = parsePacket(c);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.opcode).toBe(c.readUInt16BE(0));
      expect(!r.ok && r.reason.length).toBeGreaterThan(0);
    }
  });

  it('rejects short packets and unknown opcodes', () => {
    expect(parsePacket(Buffer.alloc(0)).ok).toBe(false);
    expect(parsePacket(Buffer.from([0])).ok).toBe(false);
    expect(parsePacket(Buffer.from([0, 4, 0])).ok).toBe(false); // truncated ACK
    expect(parsePacket(Buffer.from([0, 3, 1])).ok).toBe(false); // truncated DATA
    const u = parsePacket(Buffer.from([0, 9, 0, 0]));
    expect(u).toMatchObject({ ok: false, opcode: 9 });
  });

  it('encodes DATA with the block number modulo 65536', () => {
    const d = encodeData(65536 + 7, Buffer.from('hello'));
    const r = parsePacket(d);
    expect(r.ok && r.packet).toMatchObject({ op: Opcode.DATA, block: 7 });
    expect(r.ok && r.packet.op === Opcode.DATA && r.packet.data.toString()).toBe('hello');
    expect(parsePacket(encodeData(65535, Buffer.alloc(0)))).toMatchObject({ ok: true, packet: { block: 65535 } });
  });

  it('round-trips ACK, ERROR and OACK', () => {
    expect(parsePacket(encodeAck(65535))).toMatchObject({ ok: true, packet: { op: Opcode.ACK, block: 65535 } });
    expect(parsePacket(encodeError(1, 'File not found'))).toMatchObject({ ok: true, packet: { op: Opcode.ERROR, code: 1, message: 'File not found' } });
    const o = parsePacket(encodeOack([['tsize', '74213'], ['blksize', '1468']]));
    expect(o.ok && o.packet.op === Opcode.OACK && Object.fromEntries(o.packet.options)).toEqual({ tsize: '74213', blksize: '1468' });
  });

  it('accepts an ERROR whose message lacks its NUL (firmware does this)', () => {
    const r = parsePacket(raw([0, 5, 0, 8], 'User aborted'));
    expect(r).toMatchObject({ ok: true, packet: { op: Opcode.ERROR, code: 8, message: 'User aborted' } });
  });

  it('never throws on random input', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
    for (let i = 0; i < 5000; i++) {
      const len = rnd() % 80;
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = rnd() & 0xff;
      if (len >= 2 && i % 2 === 0) b[1] = (i >> 1) % 8; // bias towards valid opcodes
      if (len >= 1) b[0] = 0;
      expect(() => parsePacket(b)).not.toThrow();
    }
  });
});
