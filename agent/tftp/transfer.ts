import { encodeData, encodeError, encodeOack, ErrorCode, Opcode, type Packet } from './packet.js';
import type { ByteSource } from './source.js';

/**
 * The sending side of one read transfer (RFC 1350 + 2347/2348/2349 + 7440), as a state machine
 * with no sockets of its own: the server feeds it the peer's packets (`handle`) and gives it a
 * `send` function and a clock. Tests drive it with a fake clock and a recording `send`.
 *
 * - With an OACK it waits for ACK 0 (retransmitting the OACK), else it starts with DATA 1.
 * - It sends a window of `windowsize` blocks, then waits. An ACK for the last block of the window
 *   moves on; an ACK inside the window means the client lost the next block, so the window is
 *   resent from there (RFC 7440). Block numbers are 16-bit and roll over to 0 after 65535.
 * - A duplicate ACK (the block already acknowledged) is ignored in lock-step mode, which is what
 *   prevents the Sorcerer's Apprentice bug; in windowed mode it triggers at most one early resend
 *   per window (the client's hint that the first block of the window was lost).
 * - No progress for `timeoutMs`: resend the window (or OACK); after `retries` resends, give up.
 * - An ERROR from the client ends it. Error 0 or 8 right after our OACK is a UEFI size probe.
 */

export type TransferOutcome = 'complete' | 'size-probe' | 'error';

export interface TransferResult {
  outcome: TransferOutcome;
  /** Payload bytes the client acknowledged. */
  bytes: number;
  error?: string;
  retransmits: number;
  duplicateAcks: number;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface ReadTransferOptions {
  source: ByteSource;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Resends of the same window before giving up. */
  retries: number;
  /** OACK options, or null for a plain RFC 1350 transfer. */
  oack: [string, string][] | null;
  send: (packet: Buffer) => void;
  onDone: (result: TransferResult) => void;
  clock?: Clock;
  /** Called once per packet sent again after a timeout or loss hint. */
  onRetransmit?: (count: number) => void;
}

type State = 'idle' | 'oack' | 'data' | 'done';

export class ReadTransfer {
  private state: State = 'idle';
  /** Highest block the client acknowledged (absolute, not modulo 65536). */
  private base = 0;
  /** Packets for blocks base+1 .. base+window.length, kept for retransmission. */
  private window: Buffer[] = [];
  private readonly lastBlock: number;
  private readonly clock: Clock;
  private oackPacket: Buffer | null = null;
  private timer: unknown = undefined;
  private deadline = 0;
  private attempts = 0;
  private loading = false;
  private resendAfterLoad = false;
  private earlyResent = false;
  private retransmits = 0;
  private duplicateAcks = 0;

  constructor(private readonly o: ReadTransferOptions) {
    if (!Number.isInteger(o.blksize) || o.blksize < 8 || o.blksize > 65464) throw new Error('blksize out of range');
    if (!Number.isInteger(o.windowsize) || o.windowsize < 1 || o.windowsize > 65535) throw new Error('windowsize out of range');
    if (!(o.timeoutMs > 0)) throw new Error('timeoutMs must be > 0');
    if (!Number.isInteger(o.retries) || o.retries < 0) throw new Error('retries must be an integer >= 0');
    this.clock = o.clock ?? realClock;
    // A file whose size is a multiple of blksize ends with an empty block.
    this.lastBlock = Math.floor(o.source.size / o.blksize) + 1;
  }

  get finished(): boolean {
    return this.state === 'done';
  }

  /** Total number of DATA blocks this transfer sends (the last one shorter than blksize). */
  get blocks(): number {
    return this.lastBlock;
  }

  start(): void {
    if (this.state !== 'idle') return;
    if (this.o.oack) {
      this.state = 'oack';
      this.oackPacket = encodeOack(this.o.oack);
      this.o.send(this.oackPacket);
      this.arm();
    } else {
      this.state = 'data';
      this.sendWindow(false);
    }
  }

  handle(p: Packet): void {
    if (this.state === 'done' || this.state === 'idle') return;
    if (p.op === Opcode.ERROR) {
      const probe = this.state === 'oack' && (p.code === ErrorCode.NOT_DEFINED || p.code === ErrorCode.OPTION_REFUSED);
      this.finish(probe ? 'size-probe' : 'error', probe ? undefined : `client error ${p.code}: ${p.message}`);
      return;
    }
    if (p.op !== Opcode.ACK) return; // stray DATA/RRQ/OACK on a read transfer: ignore
    if (this.state === 'oack') {
      if (p.block !== 0) return;
      this.state = 'data';
      this.oackPacket = null;
      this.attempts = 0;
      this.sendWindow(false);
      return;
    }
    const inFlight = this.window.length;
    const delta = (p.block - (this.base & 0xffff)) & 0xffff;
    if (delta === 0) {
      this.duplicateAcks++;
      // Lock-step: never answer a duplicate ACK (Sorcerer's Apprentice). Windowed: one early resend.
      if (this.o.windowsize > 1 && !this.earlyResent && !this.loading && inFlight > 0) {
        this.earlyResent = true;
        this.resend();
      }
      return;
    }
    if (delta > inFlight) return; // stale ACK from an earlier window, or garbage
    this.base += delta;
    this.window.splice(0, delta);
    this.attempts = 0;
    this.earlyResent = false;
    if (this.base >= this.lastBlock) {
      this.finish('complete');
      return;
    }
    // ACK for the window's last block: the next window. ACK inside it: the client dropped the rest,
    // resend from base+1 (the packets we still hold) and top the window up.
    this.sendWindow(delta < inFlight);
  }

  /** End the transfer from outside (socket error, server stop); tells the client when `notify`. */
  abort(reason: string, notify = true): void {
    if (this.state === 'done') return;
    if (notify) this.o.send(encodeError(ErrorCode.NOT_DEFINED, 'Transfer aborted'));
    this.finish('error', reason);
  }

  private bytesAcked(): number {
    return Math.min(this.base * this.o.blksize, this.o.source.size);
  }

  private finish(outcome: TransferOutcome, error?: string): void {
    if (this.state === 'done') return;
    this.state = 'done';
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.window = [];
    const result: TransferResult = {
      outcome,
      bytes: outcome === 'complete' ? this.o.source.size : this.bytesAcked(),
      retransmits: this.retransmits,
      duplicateAcks: this.duplicateAcks,
    };
    if (error !== undefined) result.error = error;
    this.o.onDone(result);
  }

  /**
   * Make sure the window holds packets for base+1 .. min(base+windowsize, lastBlock), reading from the
   * source as needed, then send: everything in the window when `resendHeld`, else only new packets.
   */
  private sendWindow(resendHeld: boolean): void {
    if (this.state !== 'data') return;
    if (this.loading) {
      if (resendHeld) this.resendAfterLoad = true;
      return;
    }
    const want = Math.min(this.o.windowsize, this.lastBlock - this.base);
    const held = this.window.length;
    const { blksize } = this.o;
    const size = this.o.source.size;
    for (let i = held; i < want; i++) {
      const block = this.base + 1 + i;
      const pos = (block - 1) * blksize;
      const len = Math.min(blksize, size - pos);
      const data = this.o.source.peek(pos, len);
      if (data === undefined) {
        // Not in memory yet: load the rest of the window, then try again.
        this.loading = true;
        const endPos = Math.min((this.base + want) * blksize, size);
        this.o.source.load(pos, endPos - pos).then(
          () => {
            this.loading = false;
            const again = this.resendAfterLoad;
            this.resendAfterLoad = false;
            this.sendWindow(again);
          },
          (err: Error) => {
            this.loading = false;
            if (this.state === 'done') return;
            this.o.send(encodeError(ErrorCode.NOT_DEFINED, 'Read error'));
            this.finish('error', `read error: ${err.message}`);
          },
        );
        // Send what we already have so the client is not idle while we wait for the disk.
        break;
      }
      this.window.push(encodeData(block, data));
    }
    const from = resendHeld ? 0 : held;
    if (resendHeld && held > 0) this.countRetransmits(held);
    for (let i = from; i < this.window.length; i++) this.o.send(this.window[i]!);
    if (this.window.length > 0) this.arm();
  }

  private resend(): void {
    if (this.state === 'oack' && this.oackPacket) {
      this.countRetransmits(1);
      this.o.send(this.oackPacket);
    } else if (this.state === 'data') {
      this.countRetransmits(this.window.length);
      for (const pkt of this.window) this.o.send(pkt);
    }
    this.arm();
  }

  private countRetransmits(n: number): void {
    this.retransmits += n;
    this.o.onRetransmit?.(n);
  }

  /** (Re)start the retransmission deadline; one lazily re-armed timer per transfer. */
  private arm(): void {
    this.deadline = this.clock.now() + this.o.timeoutMs;
    if (this.timer === undefined) this.timer = this.clock.setTimeout(() => this.onTimer(), this.o.timeoutMs);
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.state === 'done') return;
    const now = this.clock.now();
    if (now < this.deadline) {
      this.timer = this.clock.setTimeout(() => this.onTimer(), this.deadline - now);
      return;
    }
    if (this.loading) {
      this.arm(); // waiting on the disk, not on the client
      return;
    }
    if (this.attempts >= this.o.retries) {
      this.finish('error', 'timeout');
      return;
    }
    this.attempts++;
    this.resend();
  }
}
