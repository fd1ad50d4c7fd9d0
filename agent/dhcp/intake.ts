/**
 * The DHCP server's intake: datagrams wait here between the socket and the handler, so that under overload
 * (a boot storm, a flood) the server finishes exchanges it has started before it starts new ones, and sheds
 * new ones fairly per machine.
 *
 * - Two kinds: DISCOVERs (they start an exchange) and everything else (REQUEST, DECLINE, RELEASE, INFORM and
 *   whatever does not parse far enough to tell: the handler decides). The handler takes everything else
 *   first: an OFFER already sent is only worth its cost if its REQUEST is answered.
 * - Both are bounded. Other datagrams: when full, the oldest is dropped (the freshest client is the one most
 *   likely still waiting; a dropped client retransmits, as after a loss on the wire).
 * - DISCOVERs are shed per machine (client MAC, chaddr), not per datagram:
 *   - one queued DISCOVER per MAC: a retransmission while one waits replaces it in its place (first come,
 *     first served per machine; one machine's retransmissions, or a flood from one MAC, hold one slot);
 *   - a MAC whose DISCOVER was shed is remembered (how often, for `shedMemoryMs`, up to `shedMemoryMacs`
 *     MACs) and its next DISCOVERs queue at a higher priority (shed once, shed twice or more): the handler
 *     takes the highest priority first, and a full queue drops the oldest DISCOVER of the lowest priority
 *     present (the new one itself when everything waiting ranks above it). A machine the agent turned away
 *     goes before machines it never turned away, so under a sustained overload no machine is turned away
 *     boot after boot while others get through. Handing a MAC's DISCOVER to the handler forgets the MAC.
 * - The server handles as many datagrams per loop turn as libuv reads (server.ts): the intake orders each
 *   read batch and bounds what waits; beyond that the socket buffer drops, which costs nothing.
 */
import { MessageType, Opt } from './options.js';

export interface IntakeItem<T> {
  buf: Buffer;
  meta: T;
}

export interface IntakeStats {
  /** DISCOVERs dropped because their queue was full (lowest priority, then oldest, first). */
  shedDiscovers: number;
  /** Of those, DISCOVERs of a MAC that had been shed before (a machine turned away again). */
  shedAgain: number;
  /** DISCOVERs that replaced a queued one of the same MAC (retransmissions while it waited). */
  mergedDiscovers: number;
  /** DISCOVERs handed to the handler ahead of others because their MAC had been shed. */
  prioritized: number;
  /** Other datagrams dropped because their queue was full. */
  shedOthers: number;
  /** Most datagrams waiting at once. */
  highWater: number;
}

/** Offset of the first option (236-byte header + 4-byte magic cookie). */
const FIRST_OPTION = 240;

/**
 * The DHCP message type (option 53) of a raw datagram, or undefined when it is not found in the main options
 * area. A cheap scan, not a parse: the handler validates everything again.
 */
export function peekMessageType(buf: Buffer): number | undefined {
  let i = FIRST_OPTION;
  while (i < buf.length) {
    const code = buf[i]!;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END || i + 1 >= buf.length) return undefined;
    const len = buf[i + 1]!;
    if (code === Opt.MESSAGE_TYPE) return len === 1 && i + 2 < buf.length ? buf[i + 2] : undefined;
    i += 2 + len;
  }
  return undefined;
}

/** A FIFO ring with a fixed capacity that drops its oldest item when full. */
class Ring<T> {
  private items: (T | undefined)[];
  private head = 0;
  private n = 0;
  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
  }
  get length(): number {
    return this.n;
  }
  /** Adds; returns true when the oldest item was dropped to make room. */
  push(x: T): boolean {
    if (this.n === this.capacity) {
      this.items[this.head] = x;
      this.head = (this.head + 1) % this.capacity;
      return true;
    }
    this.items[(this.head + this.n) % this.capacity] = x;
    this.n++;
    return false;
  }
  shift(): T | undefined {
    if (this.n === 0) return undefined;
    const x = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.n--;
    return x;
  }
}

/** Offset and size of chaddr in the BOOTP header. */
const CHADDR = 28;
const CHADDR_LEN = 16;

/** The client hardware address of a raw datagram as a map key (latin1 of chaddr's first hlen bytes), or undefined. */
export function peekMacKey(buf: Buffer): string | undefined {
  if (buf.length < CHADDR + CHADDR_LEN) return undefined;
  const hlen = Math.min(buf[2]!, CHADDR_LEN);
  return hlen > 0 ? buf.toString('latin1', CHADDR, CHADDR + hlen) : undefined;
}

/** Priorities of a queued DISCOVER: its MAC shed 0, 1, 2 or more times. */
const LEVELS = 3;

interface Slot<T> extends IntakeItem<T> {
  mac: string | undefined;
  level: number;
}

export interface IntakeOptions {
  maxDiscovers?: number;
  maxOthers?: number;
  /** How long a shed MAC keeps its priority (default 300 s: longer than a PXE ROM's 4+8+16+32 s and a reboot). */
  shedMemoryMs?: number;
  /** Most MACs remembered as shed (default 65,536; the oldest is forgotten first). */
  shedMemoryMacs?: number;
  now?: () => number;
}

export class DhcpIntake<T> {
  /** DISCOVERs by priority (index = times their MAC was shed, capped), each FIFO. */
  private readonly discovers: Ring<Slot<T>>[];
  private nDiscovers = 0;
  private readonly maxDiscovers: number;
  private readonly others: Ring<IntakeItem<T>>;
  /** The queued DISCOVER of each MAC. */
  private readonly queued = new Map<string, Slot<T>>();
  /** MACs whose DISCOVER was shed: times and when last (insertion order = oldest first). */
  private readonly shed = new Map<string, { times: number; at: number }>();
  private readonly shedMemoryMs: number;
  private readonly shedMemoryMacs: number;
  private readonly now: () => number;
  private readonly st: IntakeStats = { shedDiscovers: 0, shedAgain: 0, mergedDiscovers: 0, prioritized: 0, shedOthers: 0, highWater: 0 };

  constructor(opts: IntakeOptions = {}) {
    this.maxDiscovers = Math.max(1, opts.maxDiscovers ?? 512);
    this.discovers = Array.from({ length: LEVELS }, () => new Ring<Slot<T>>(this.maxDiscovers));
    this.others = new Ring(opts.maxOthers ?? 4096);
    this.shedMemoryMs = opts.shedMemoryMs ?? 300_000;
    this.shedMemoryMacs = Math.max(1, opts.shedMemoryMacs ?? 65_536);
    this.now = opts.now ?? Date.now;
  }

  get length(): number {
    return this.nDiscovers + this.others.length;
  }

  push(buf: Buffer, meta: T): void {
    if (peekMessageType(buf) === MessageType.DISCOVER) this.pushDiscover(buf, meta);
    else if (this.others.push({ buf, meta })) this.st.shedOthers++;
    if (this.length > this.st.highWater) this.st.highWater = this.length;
  }

  private pushDiscover(buf: Buffer, meta: T): void {
    const mac = peekMacKey(buf);
    if (mac !== undefined) {
      const waiting = this.queued.get(mac);
      if (waiting) {
        // A retransmission (or a new transaction) of a machine already waiting: the newest datagram, its place.
        waiting.buf = buf;
        waiting.meta = meta;
        this.st.mergedDiscovers++;
        return;
      }
    }
    const slot: Slot<T> = { buf, meta, mac, level: mac === undefined ? 0 : Math.min(LEVELS - 1, this.shedTimes(mac)) };
    if (this.nDiscovers >= this.maxDiscovers) {
      let low = 0;
      while (this.discovers[low]!.length === 0) low++; // nDiscovers > 0: one level holds some
      if (low > slot.level) {
        this.drop(slot); // everything waiting ranks above it
        return;
      }
      this.drop(this.discovers[low]!.shift()!);
      this.nDiscovers--;
    }
    this.discovers[slot.level]!.push(slot);
    this.nDiscovers++;
    if (mac !== undefined) this.queued.set(mac, slot);
  }

  /** Sheds a DISCOVER that is not (or no longer) queued. */
  private drop(slot: Slot<T>): void {
    this.st.shedDiscovers++;
    if (slot.mac === undefined) return;
    if (this.queued.get(slot.mac) === slot) this.queued.delete(slot.mac);
    const prev = this.shed.get(slot.mac);
    const times = prev && this.now() - prev.at < this.shedMemoryMs ? prev.times + 1 : 1;
    if (times > 1) this.st.shedAgain++;
    this.shed.delete(slot.mac); // re-inserted last: the map's order stays oldest first
    if (this.shed.size >= this.shedMemoryMacs) this.shed.delete(this.shed.keys().next().value!);
    this.shed.set(slot.mac, { times, at: this.now() });
  }

  private shedTimes(mac: string): number {
    if (this.shed.size === 0) return 0;
    const s = this.shed.get(mac);
    if (!s) return 0;
    if (this.now() - s.at >= this.shedMemoryMs) {
      this.shed.delete(mac);
      return 0;
    }
    return s.times;
  }

  /** The next datagram to handle: anything that continues an exchange, then DISCOVERs by priority, oldest first. */
  next(): IntakeItem<T> | undefined {
    const other = this.others.shift();
    if (other) return other;
    for (let level = LEVELS - 1; level >= 0; level--) {
      const slot = this.discovers[level]!.shift();
      if (!slot) continue;
      this.nDiscovers--;
      if (slot.mac !== undefined) {
        this.queued.delete(slot.mac);
        if (level > 0) {
          this.shed.delete(slot.mac); // served: the machine is no longer owed anything
          this.st.prioritized++;
        }
      }
      return { buf: slot.buf, meta: slot.meta };
    }
    return undefined;
  }

  /** MACs remembered as shed (bounded by `shedMemoryMacs`). */
  get shedMacs(): number {
    return this.shed.size;
  }

  stats(): IntakeStats {
    return { ...this.st };
  }
}
