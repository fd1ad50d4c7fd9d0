/**
 * The DHCP server's intake: datagrams wait here between the socket and the handler, so that under overload
 * (a boot storm, a flood) the server finishes exchanges it has started before it starts new ones.
 *
 * - Two queues: DISCOVERs (they start an exchange) and everything else (REQUEST, DECLINE, RELEASE, INFORM and
 *   whatever does not parse far enough to tell: the handler decides). The handler takes from the second
 *   queue first: an OFFER already sent is only worth its cost if its REQUEST is answered.
 * - Both are bounded; when one is full its oldest datagram is dropped (the freshest client is the one most
 *   likely still waiting; a dropped client retransmits, as after a loss on the wire).
 * - The server handles as many datagrams per loop turn as libuv reads (server.ts): the intake orders each
 *   read batch and bounds what waits; beyond that the socket buffer drops, which costs nothing.
 */
import { MessageType, Opt } from './options.js';

export interface IntakeItem<T> {
  buf: Buffer;
  meta: T;
}

export interface IntakeStats {
  /** DISCOVERs dropped because their queue was full (oldest first). */
  shedDiscovers: number;
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

export class DhcpIntake<T> {
  private readonly discovers: Ring<IntakeItem<T>>;
  private readonly others: Ring<IntakeItem<T>>;
  private readonly st: IntakeStats = { shedDiscovers: 0, shedOthers: 0, highWater: 0 };

  constructor(opts: { maxDiscovers?: number; maxOthers?: number } = {}) {
    this.discovers = new Ring(opts.maxDiscovers ?? 512);
    this.others = new Ring(opts.maxOthers ?? 4096);
  }

  get length(): number {
    return this.discovers.length + this.others.length;
  }

  push(buf: Buffer, meta: T): void {
    const discover = peekMessageType(buf) === MessageType.DISCOVER;
    if ((discover ? this.discovers : this.others).push({ buf, meta })) {
      if (discover) this.st.shedDiscovers++;
      else this.st.shedOthers++;
    }
    if (this.length > this.st.highWater) this.st.highWater = this.length;
  }

  /** The next datagram to handle: anything that continues an exchange before a DISCOVER. */
  next(): IntakeItem<T> | undefined {
    return this.others.shift() ?? this.discovers.shift();
  }

  stats(): IntakeStats {
    return { ...this.st };
  }
}
