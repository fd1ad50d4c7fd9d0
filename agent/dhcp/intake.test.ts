import { describe, expect, it } from 'vitest';
import { DhcpIntake, peekMessageType } from './intake.js';
import { MessageType, Opt } from './options.js';
import { BOOTREQUEST, emptyPacket, serializePacket } from './packet.js';

function dgram(type: number | undefined, mac = '02:00:00:00:00:01', pad = 0): Buffer {
  const p = emptyPacket(BOOTREQUEST, mac, 1);
  if (type !== undefined) p.options.set(Opt.MESSAGE_TYPE, Buffer.from([type]));
  p.options.set(Opt.HOSTNAME, Buffer.from('h'));
  const b = serializePacket(p);
  if (!pad) return b;
  // Pad options before the first real option: the scan must step over them.
  return Buffer.concat([b.subarray(0, 240), Buffer.alloc(pad, Opt.PAD), b.subarray(240)]);
}

describe('peekMessageType', () => {
  it('finds option 53 wherever it sits in the main area, past pads', () => {
    expect(peekMessageType(dgram(MessageType.DISCOVER))).toBe(MessageType.DISCOVER);
    expect(peekMessageType(dgram(MessageType.REQUEST, undefined, 5))).toBe(MessageType.REQUEST);
  });

  it('returns undefined for BOOTP, truncated and hostile datagrams without reading past the end', () => {
    expect(peekMessageType(dgram(undefined))).toBeUndefined();
    expect(peekMessageType(Buffer.alloc(10))).toBeUndefined();
    const cut = dgram(MessageType.DISCOVER).subarray(0, 242); // option 53 header without its value
    expect(peekMessageType(cut)).toBeUndefined();
    const lying = Buffer.concat([dgram(undefined).subarray(0, 240), Buffer.from([12, 250, 1])]); // length past the end
    expect(peekMessageType(lying)).toBeUndefined();
    const wrongLen = Buffer.concat([dgram(undefined).subarray(0, 240), Buffer.from([53, 2, 1, 1, 255])]);
    expect(peekMessageType(wrongLen)).toBeUndefined();
  });
});

describe('DhcpIntake', () => {
  it('hands out what continues an exchange (REQUEST, RELEASE, unparseable) before any DISCOVER, each kind in arrival order', () => {
    const q = new DhcpIntake<string>();
    q.push(dgram(MessageType.DISCOVER), 'd1');
    q.push(dgram(MessageType.REQUEST), 'r1');
    q.push(dgram(MessageType.DISCOVER), 'd2');
    q.push(Buffer.alloc(3), 'junk');
    q.push(dgram(MessageType.RELEASE), 'rel');
    const order: string[] = [];
    for (let it = q.next(); it; it = q.next()) order.push(it.meta);
    expect(order).toEqual(['r1', 'junk', 'rel', 'd1', 'd2']);
    expect(q.length).toBe(0);
  });

  it('is bounded: a full queue drops its oldest datagram and counts it, the other queue is untouched', () => {
    const q = new DhcpIntake<number>({ maxDiscovers: 3, maxOthers: 2 });
    for (let i = 0; i < 10; i++) q.push(dgram(MessageType.DISCOVER), i);
    for (let i = 100; i < 105; i++) q.push(dgram(MessageType.REQUEST), i);
    expect(q.length).toBe(5);
    const order: number[] = [];
    for (let it = q.next(); it; it = q.next()) order.push(it.meta);
    expect(order).toEqual([103, 104, 7, 8, 9]);
    expect(q.stats()).toEqual({ shedDiscovers: 7, shedOthers: 3, highWater: 5 });
  });
});
