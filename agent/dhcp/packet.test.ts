import { describe, expect, it } from 'vitest';
import {
  BOOTREQUEST,
  DhcpParseError,
  emptyPacket,
  HEADER_SIZE,
  MAX_PACKET_SIZE,
  MIN_PACKET_SIZE,
  parsePacket,
  serializePacket,
  serializePacketInto,
  type DhcpPacket,
} from './packet.js';
import { encodeIp, encodeSubOptions, encodeU16, encodeUserClassRfc3004, MessageType, Opt } from './options.js';
import { decodeRequest, isNetbootClient } from './request.js';

/** A small deterministic PRNG so fuzz failures reproduce. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pxeDiscover(): DhcpPacket {
  const p = emptyPacket(BOOTREQUEST, '52:54:00:12:34:56', 0xdeadbeef);
  p.flags = 0x8000;
  p.secs = 4;
  p.options.set(Opt.MESSAGE_TYPE, Buffer.from([MessageType.DISCOVER]));
  p.options.set(Opt.PARAM_LIST, Buffer.from([1, 3, 6, 43, 60, 66, 67, 175]));
  p.options.set(Opt.MAX_SIZE, encodeU16(1472));
  p.options.set(Opt.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00007:UNDI:003000'));
  p.options.set(Opt.CLIENT_ARCH, encodeU16(7));
  p.options.set(Opt.CLIENT_NDI, Buffer.from([1, 3, 0]));
  p.options.set(Opt.CLIENT_UUID, Buffer.concat([Buffer.from([0]), Buffer.from('00112233445566778899aabbccddeeff', 'hex')]));
  p.options.set(Opt.USER_CLASS, Buffer.from('iPXE'));
  p.options.set(Opt.IPXE, encodeSubOptions([[19, Buffer.from([1])], [24, Buffer.from([1])]]));
  return p;
}

/** Build a raw packet by hand: header + cookie + the given option bytes (pad, end and all). */
function rawPacket(optionBytes: number[], patch?: (b: Buffer) => void): Buffer {
  const head = serializePacket(emptyPacket(BOOTREQUEST, '02:00:00:00:00:01', 1), 0).subarray(0, MIN_PACKET_SIZE);
  const b = Buffer.concat([head, Buffer.from(optionBytes)]);
  patch?.(b);
  return b;
}

describe('packet codec', () => {
  it('round-trips a PXE DISCOVER with every header field and option', () => {
    const p = pxeDiscover();
    p.giaddr = '198.18.1.1';
    p.hops = 1;
    p.options.set(Opt.RELAY_AGENT, encodeSubOptions([[1, Buffer.from('eth0')], [5, encodeIp('198.18.1.0')]]));
    const back = parsePacket(serializePacket(p));
    expect(back).toEqual(p);
  });

  it('writes option 53 first whatever the map order, then the others in order, then end', () => {
    const p = emptyPacket(BOOTREQUEST, '02:00:00:00:00:03', 9);
    p.options.set(Opt.SERVER_ID, Buffer.from([198, 18, 0, 1]));
    p.options.set(Opt.HOSTNAME, Buffer.alloc(0));
    p.options.set(Opt.MESSAGE_TYPE, Buffer.from([2]));
    p.file = 'undionly.kpxe';
    const wire = serializePacket(p);
    expect([...wire.subarray(MIN_PACKET_SIZE, MIN_PACKET_SIZE + 12)]).toEqual([53, 1, 2, 54, 4, 198, 18, 0, 1, 12, 0, 255]);
    expect(wire.length).toBe(300);
    expect(parsePacket(wire)).toMatchObject({ sname: '', file: 'undionly.kpxe' });
  });

  it('splits options longer than 255 bytes and concatenates them back (RFC 3396)', () => {
    const p = emptyPacket(BOOTREQUEST, '02:00:00:00:00:02', 7);
    const long = Buffer.from(Array.from({ length: 600 }, (_, i) => i & 0xff));
    p.options.set(Opt.MESSAGE_TYPE, Buffer.from([1]));
    p.options.set(Opt.VENDOR, long);
    const wire = serializePacket(p);
    // three instances of option 43: 255 + 255 + 90
    expect(wire.indexOf(Buffer.from([43, 255]))).toBeGreaterThan(MIN_PACKET_SIZE);
    expect(parsePacket(wire).options.get(Opt.VENDOR)).toEqual(long);
  });

  it('skips pad bytes one at a time (the dhcp npm package skips two)', () => {
    const b = rawPacket([0, 53, 1, 1, 0, 0, 0, 50, 4, 198, 18, 0, 9, 0, 255]);
    const p = parsePacket(b);
    expect([...p.options.keys()]).toEqual([53, 50]);
    expect(decodeRequest(p).requestedIp).toBe('198.18.0.9');
  });

  it('reads options from file and sname when overloaded (52), file first', () => {
    const b = rawPacket([53, 1, 3, 52, 1, 3, 255], (buf) => {
      buf.set([12, 4, ...Buffer.from('host'), 255], 108); // file
      buf.set([60, 9, ...Buffer.from('PXEClient'), 255], 44); // sname
    });
    const p = parsePacket(b);
    expect(p.file).toBe('');
    expect(p.sname).toBe('');
    expect(p.options.get(Opt.HOSTNAME)?.toString()).toBe('host');
    expect(p.options.get(Opt.VENDOR_CLASS)?.toString()).toBe('PXEClient');
    expect(p.options.has(Opt.OVERLOAD)).toBe(false);
  });

  it('keeps sname/file as strings when not overloaded', () => {
    const p = emptyPacket(BOOTREQUEST, '02:00:00:00:00:03', 3);
    p.sname = 'server';
    p.file = 'undionly.kpxe';
    p.options.set(Opt.MESSAGE_TYPE, Buffer.from([2]));
    const back = parsePacket(serializePacket(p));
    expect(back.sname).toBe('server');
    expect(back.file).toBe('undionly.kpxe');
  });

  it('pads replies to 300 bytes', () => {
    const p = emptyPacket(BOOTREQUEST, '02:00:00:00:00:04', 3);
    p.options.set(Opt.MESSAGE_TYPE, Buffer.from([2]));
    expect(serializePacket(p).length).toBe(300);
  });

  it('serializes into a reused buffer at an offset: the same bytes, the rest of the buffer untouched', () => {
    const p = emptyPacket(BOOTREQUEST, '02:00:00:00:00:05', 5);
    p.file = 'undionly.kpxe';
    p.options.set(Opt.MESSAGE_TYPE, Buffer.from([5]));
    p.options.set(Opt.HOSTNAME, Buffer.from('h'.repeat(300)));
    const want = serializePacket(p);
    const out = Buffer.alloc(2000, 0xaa); // a send buffer holding an earlier, longer datagram
    const n = serializePacketInto(p, out, 100);
    expect(n).toBe(want.length);
    expect(out.subarray(100, 100 + n).equals(want)).toBe(true);
    expect(out.subarray(0, 100).every((b) => b === 0xaa) && out.subarray(100 + n).every((b) => b === 0xaa)).toBe(true);
    expect(() => serializePacketInto(p, out, 2000 - n + 1)).toThrow(RangeError);
    p.options.set(Opt.VENDOR_CLASS, Buffer.alloc(MAX_PACKET_SIZE));
    expect(() => serializePacketInto(p, Buffer.alloc(4 * MAX_PACKET_SIZE), 0)).toThrow(/exceeds/);
    expect(() => serializePacket(p)).toThrow(/exceeds/);
  });
});

describe('malformed packets', () => {
  const expectCode = (b: Buffer, code: string) => {
    let err: unknown;
    try {
      parsePacket(b);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DhcpParseError);
    expect((err as DhcpParseError).code).toBe(code);
  };

  it('rejects a truncated header', () => expectCode(Buffer.alloc(100), 'truncated'));
  it('rejects a bad magic cookie', () => expectCode(rawPacket([255], (b) => b.writeUInt32BE(0x63825364, HEADER_SIZE)), 'bad_cookie'));
  it('rejects a bad op', () => expectCode(rawPacket([255], (b) => (b[0] = 9)), 'bad_op'));
  it('rejects hlen > 16', () => expectCode(rawPacket([255], (b) => (b[2] = 17)), 'bad_hlen'));
  it('rejects an option whose length runs past the buffer', () => expectCode(rawPacket([53, 1, 1, 12, 200, 65, 65]), 'option_overrun'));
  it('rejects an option with no length byte', () => expectCode(rawPacket([53, 1, 1, 12]), 'option_overrun'));
  it('rejects a missing end option', () => expectCode(rawPacket([53, 1, 1]), 'missing_end'));
  it('rejects oversize datagrams', () => expectCode(rawPacket([255, ...new Array(MAX_PACKET_SIZE).fill(0)]), 'oversize'));
  it('rejects option 52 inside an overloaded field (loop)', () =>
    expectCode(
      rawPacket([53, 1, 1, 52, 1, 3, 255], (b) => {
        b.set([52, 1, 2, 255], 108);
      }),
      'overload_loop',
    ));
  it('rejects a bad overload value', () => expectCode(rawPacket([52, 1, 7, 255]), 'bad_option'));
  it('rejects an option in an overloaded field that runs past the field', () =>
    expectCode(
      rawPacket([52, 1, 2, 255], (b) => {
        b.set([12, 100, 65], 44);
      }),
      'option_overrun',
    ));

  it('turns bad option values into bad_option when decoding the request', () => {
    for (const [code, val] of [
      [Opt.REQUESTED_IP, [1, 2, 3]],
      [Opt.CLIENT_ARCH, [0]],
      [Opt.CLIENT_NDI, [1, 2]],
      [Opt.CLIENT_UUID, [1, 2, 3]],
      [Opt.MESSAGE_TYPE, [1, 2]],
      [Opt.RELAY_AGENT, [1, 10, 0]],
      [Opt.RELAY_AGENT, [5, 3, 1, 2, 3]],
    ] as Array<[number, number[]]>) {
      const p = parsePacket(rawPacket([code, val.length, ...val, 255]));
      expect(() => decodeRequest(p), `option ${code}`).toThrow(DhcpParseError);
    }
  });

  it('every truncation of a valid packet either parses (after the end option) or fails with a typed error', () => {
    const wire = serializePacket(pxeDiscover());
    const endAt = wire.lastIndexOf(255, wire.length - 1);
    let ok = 0;
    for (let len = 0; len < wire.length; len++) {
      const cut = wire.subarray(0, len);
      try {
        parsePacket(cut);
        ok++;
        expect(len).toBeGreaterThan(endAt);
      } catch (e) {
        expect(e).toBeInstanceOf(DhcpParseError);
        expect(len).toBeLessThanOrEqual(endAt);
      }
    }
    expect(ok).toBe(wire.length - endAt - 1);
  });

  it('survives random bytes, random mutations and lying length fields without crashing', () => {
    const rnd = prng(0x5eed);
    const valid = serializePacket(pxeDiscover());
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < 20_000; i++) {
      let b: Buffer;
      const kind = i % 4;
      if (kind === 0) {
        b = Buffer.from(Array.from({ length: Math.floor(rnd() * 700) }, () => Math.floor(rnd() * 256)));
        if (b.length >= MIN_PACKET_SIZE && rnd() < 0.7) b.writeUInt32BE(0x63825363, HEADER_SIZE);
        if (b.length > 0 && rnd() < 0.7) b[0] = 1;
        if (b.length > 2 && rnd() < 0.7) b[2] = 6;
      } else if (kind === 1) {
        b = Buffer.from(valid);
        for (let k = 0; k < 1 + rnd() * 5; k++) b[MIN_PACKET_SIZE + Math.floor(rnd() * (b.length - MIN_PACKET_SIZE))] = Math.floor(rnd() * 256);
      } else if (kind === 2) {
        // random option stream with lengths that may lie
        const opts: number[] = [];
        while (opts.length < 300) {
          const code = Math.floor(rnd() * 256);
          const len = Math.floor(rnd() * 256);
          opts.push(code, len, ...Array.from({ length: Math.floor(rnd() * 8) }, () => Math.floor(rnd() * 256)));
        }
        b = rawPacket(opts);
      } else {
        // overload with random field contents
        b = rawPacket([53, 1, 1, 52, 1, 1 + Math.floor(rnd() * 3), 255], (buf) => {
          for (let k = 44; k < 236; k++) buf[k] = Math.floor(rnd() * 256);
        });
      }
      try {
        const p = parsePacket(b);
        decodeRequest(p);
        parsed++;
      } catch (e) {
        expect(e).toBeInstanceOf(DhcpParseError);
        rejected++;
      }
    }
    expect(parsed + rejected).toBe(20_000);
    expect(rejected).toBeGreaterThan(0);
  });
});

describe('request decoding', () => {
  it('decodes PXE fields, user class forms, relay info and subnet selection', () => {
    const p = pxeDiscover();
    p.options.set(Opt.RELAY_AGENT, encodeSubOptions([[1, Buffer.from('br1')], [2, Buffer.from('r1')], [5, encodeIp('198.18.1.0')], [11, encodeIp('198.18.1.1')]]));
    p.options.set(Opt.SUBNET_SELECTION, encodeIp('198.18.2.0'));
    const r = decodeRequest(parsePacket(serializePacket(p)));
    expect(r.mac).toBe('52:54:00:12:34:56');
    expect(r.clientArch).toEqual([7]);
    expect(r.clientNdi).toEqual({ type: 1, major: 3, minor: 0 });
    expect(r.clientUuid).toBe('00112233-4455-6677-8899-aabbccddeeff');
    expect(r.userClass).toEqual(['iPXE']);
    expect(r.vendorClass).toBe('PXEClient:Arch:00007:UNDI:003000');
    expect(r.relayAgent?.circuitId?.toString()).toBe('br1');
    expect(r.relayAgent?.remoteId?.toString()).toBe('r1');
    expect(r.relayAgent?.linkSelection).toBe('198.18.1.0');
    expect(r.relayAgent?.serverIdOverride).toBe('198.18.1.1');
    expect(r.subnetSelection).toBe('198.18.2.0');
    expect(r.ipxe?.get(19)).toEqual(Buffer.from([1]));
    expect(r.maxSize).toBe(1472);
    expect(isNetbootClient(r)).toBe(true);
  });

  it('reads option 77 in RFC 3004 form', () => {
    const p = pxeDiscover();
    p.options.set(Opt.USER_CLASS, encodeUserClassRfc3004(['iPXE', 'rack7']));
    expect(decodeRequest(parsePacket(serializePacket(p))).userClass).toEqual(['iPXE', 'rack7']);
  });

  it('accepts option 97 with length 0', () => {
    const p = pxeDiscover();
    p.options.set(Opt.CLIENT_UUID, Buffer.alloc(0));
    expect(decodeRequest(parsePacket(serializePacket(p))).clientUuid).toBe('');
  });

  it('is not a netboot client without option 60 PXEClient/HTTPClient or user class iPXE', () => {
    expect(isNetbootClient({ vendorClass: 'MSFT 5.0', userClass: [] })).toBe(false);
    expect(isNetbootClient({ vendorClass: 'HTTPClient:Arch:00016', userClass: [] })).toBe(true);
    expect(isNetbootClient({ userClass: ['iPXE'] })).toBe(true);
  });
});
