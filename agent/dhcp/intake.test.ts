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
    q.push(dgram(MessageType.DISCOVER, macN(1)), 'd1');
    q.push(dgram(MessageType.REQUEST), 'r1');
    q.push(dgram(MessageType.DISCOVER, macN(2)), 'd2');
    q.push(Buffer.alloc(3), 'junk');
    q.push(dgram(MessageType.RELEASE), 'rel');
    const order: string[] = [];
    for (let it = q.next(); it; it = q.next()) order.push(it.meta);
    expect(order).toEqual(['r1', 'junk', 'rel', 'd1', 'd2']);
    expect(q.length).toBe(0);
  });

  it('is bounded: a full queue drops its oldest datagram and counts it, the other queue is untouched', () => {
    const q = new DhcpIntake<number>({ maxDiscovers: 3, maxOthers: 2 });
    for (let i = 0; i < 10; i++) q.push(dgram(MessageType.DISCOVER, macN(i)), i);
    for (let i = 100; i < 105; i++) q.push(dgram(MessageType.REQUEST), i);
    expect(q.length).toBe(5);
    const order: number[] = [];
    for (let it = q.next(); it; it = q.next()) order.push(it.meta);
    expect(order).toEqual([103, 104, 7, 8, 9]);
    expect(q.stats()).toEqual({ shedDiscovers: 7, shedAgain: 0, mergedDiscovers: 0, prioritized: 0, shedOthers: 3, highWater: 5 });
  });

  it('holds one DISCOVER per MAC: a retransmission replaces the waiting one in its place', () => {
    const q = new DhcpIntake<string>({ maxDiscovers: 3 });
    q.push(dgram(MessageType.DISCOVER, macN(1)), 'a1');
    q.push(dgram(MessageType.DISCOVER, macN(2)), 'b1');
    for (let i = 2; i < 50; i++) q.push(dgram(MessageType.DISCOVER, macN(1)), `a${i}`); // a flood from one MAC
    q.push(dgram(MessageType.DISCOVER, macN(3)), 'c1');
    expect(q.length).toBe(3);
    expect(drain(q)).toEqual(['a49', 'b1', 'c1']); // a's first place, its newest datagram; nobody shed
    expect(q.stats()).toMatchObject({ shedDiscovers: 0, mergedDiscovers: 48 });
  });

  it('a MAC that was shed goes first next time, and is shed last; a newcomer is shed when all waiting rank above it', () => {
    let now = 0;
    const q = new DhcpIntake<string>({ maxDiscovers: 2, shedMemoryMs: 1000, now: () => now });
    q.push(dgram(MessageType.DISCOVER, macN(1)), 'a');
    q.push(dgram(MessageType.DISCOVER, macN(2)), 'b');
    q.push(dgram(MessageType.DISCOVER, macN(3)), 'c'); // a shed (oldest of the lowest priority)
    q.push(dgram(MessageType.DISCOVER, macN(4)), 'd'); // b shed
    expect(q.stats().shedDiscovers).toBe(2);
    expect(q.shedMacs).toBe(2);
    // a and b retransmit: they rank above c and d, which are shed for them.
    q.push(dgram(MessageType.DISCOVER, macN(1)), 'a2');
    q.push(dgram(MessageType.DISCOVER, macN(2)), 'b2');
    // A newcomer while only shed-before machines wait: the newcomer is the one shed.
    q.push(dgram(MessageType.DISCOVER, macN(5)), 'e');
    expect(drain(q)).toEqual(['a2', 'b2']);
    expect(q.stats()).toMatchObject({ shedDiscovers: 5, shedAgain: 0, prioritized: 2 });
    // Served: a and b are forgotten; c, d, e are remembered. Shed again, c ranks above d at once.
    expect(q.shedMacs).toBe(3);
    q.push(dgram(MessageType.DISCOVER, macN(9)), 'z'); // never shed
    q.push(dgram(MessageType.DISCOVER, macN(3)), 'c2');
    q.push(dgram(MessageType.DISCOVER, macN(4)), 'd2'); // z shed
    q.push(dgram(MessageType.DISCOVER, macN(5)), 'e2'); // c2 (oldest of the equals) shed: c now twice
    q.push(dgram(MessageType.DISCOVER, macN(3)), 'c3'); // twice shed ranks above d2 and e2: d2 shed
    expect(q.stats().shedAgain).toBe(2);
    expect(drain(q)).toEqual(['c3', 'e2']);
    // The memory fades: after shedMemoryMs a shed MAC ranks as new again.
    q.push(dgram(MessageType.DISCOVER, macN(6)), 'f');
    q.push(dgram(MessageType.DISCOVER, macN(7)), 'g');
    now += 1000;
    q.push(dgram(MessageType.DISCOVER, macN(4)), 'd3'); // shed before (d), but long ago: f (oldest) shed
    expect(drain(q)).toEqual(['g', 'd3']);
  });

  it('remembers at most shedMemoryMacs MACs (the oldest forgotten first); datagrams without a MAC still queue', () => {
    const q = new DhcpIntake<string>({ maxDiscovers: 1, shedMemoryMacs: 100 });
    for (let i = 0; i < 1000; i++) q.push(dgram(MessageType.DISCOVER, macN(i)), `m${i}`);
    expect(q.shedMacs).toBe(100);
    expect(q.stats().shedDiscovers).toBe(999);
    const cut = dgram(MessageType.DISCOVER).subarray(0, 40); // no room for chaddr: not even a DISCOVER to the peek
    q.push(cut, 'cut');
    const noHlen = dgram(MessageType.DISCOVER, macN(2000));
    noHlen[2] = 0; // hlen 0: no MAC to key on
    q.push(noHlen, 'nohlen');
    expect(q.length).toBe(2);
  });

  it('under a sustained overload a machine once turned away is not turned away again and again (firmware retry schedule, fixed capacity)', () => {
    // 3,000 machines power on over 60 s; the server handles 4 DISCOVERs per 100 ms tick (40/s: 2,400 per
    // 60 s against 3,000 arriving), the queue holds 512 (the default). Each machine retransmits as a PXE
    // ROM does (4, 8, 16, 32 s later: one boot is 4 DISCOVERs over 60 s), then reboots. Handled = offered
    // (REQUESTs are not modelled). With the old rule (a full queue drops its oldest DISCOVER, whoever sent
    // it) this lost 108 machines a whole boot; ranking the shed machines first loses none.
    const rnd = lcg(7);
    const N = 3000;
    const PER_TICK = 4;
    let t = 0;
    const q = new DhcpIntake<number>({ maxDiscovers: 512, now: () => t * 100 });
    const schedule = [40, 80, 160, 320]; // ticks
    const next = Array.from({ length: N }, () => Math.floor(rnd() * 600));
    const tries = new Array<number>(N).fill(0);
    const servedAt = new Array<number>(N).fill(-1);
    for (; t < 10_000 && servedAt.includes(-1); t++) {
      for (let m = 0; m < N; m++) {
        if (servedAt[m] !== -1 || next[m] !== t) continue;
        q.push(dgram(MessageType.DISCOVER, macN(m)), m);
        next[m] = t + schedule[tries[m]! % 4]! + Math.floor(rnd() * 3);
        tries[m]!++;
      }
      for (let k = 0; k < PER_TICK; k++) {
        const it = q.next();
        if (!it) break;
        if (servedAt[it.meta] === -1) servedAt[it.meta] = t; // its OFFER: it sends no more DISCOVERs
      }
    }
    expect(servedAt.every((s) => s !== -1)).toBe(true);
    expect(q.stats().shedDiscovers).toBeGreaterThan(300); // overloaded: DISCOVERs were shed
    expect(q.stats().prioritized).toBeGreaterThan(300); // and their machines served first next time
    const lostBoots = tries.filter((n) => n > 4).length; // machines that needed a second boot
    expect(lostBoots).toBe(0);
  });
});

function drain<T>(q: DhcpIntake<T>): T[] {
  const out: T[] = [];
  for (let it = q.next(); it; it = q.next()) out.push(it.meta);
  return out;
}

function macN(i: number): string {
  return ['02', '00', '00', (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff].map((x) => (typeof x === 'string' ? x : x.toString(16).padStart(2, '0'))).join(':');
}

/** A small deterministic PRNG (the test must not depend on Math.random). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}
