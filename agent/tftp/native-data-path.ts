import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { TransferResult } from './transfer.js';

/**
 * The native data path: the addon in agent/tftp/native/ (built by scripts/build-native.mjs) runs the
 * data phase of a streamed transfer (OACK/ACK 0, DATA, ACKs, retransmissions) on its own thread, so a
 * lock-step round trip costs no event-loop turn. Everything else stays in JS (see server.ts). When the
 * addon is missing or does not load, the server uses the JS data path (ReadTransfer) instead.
 */

export interface NativeStartOptions {
  /** Local IPv4 address the transfer socket binds to (port 0). */
  address: string;
  clientAddress: string;
  clientPort: number;
  /** Open file descriptor; must stay open until onDone. */
  fileFd: number;
  size: number;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  /** Microseconds to spin on a non-blocking recv before sleeping in poll (0: never spin). */
  spinUs: number;
  /** OACK packet to send first (then wait for ACK 0), or null for a plain RFC 1350 transfer. */
  oack: Buffer | null;
}

/** What the addon reports at the end of a transfer. */
export interface NativeResult {
  outcome: 'complete' | 'client-error' | 'timeout' | 'socket-error' | 'cancelled' | 'read-error';
  /** Highest block acknowledged (absolute). */
  ackedBlocks: number;
  retransmits: number;
  duplicateAcks: number;
  packetsSent: number;
  malformed: number;
  /** Ended while waiting for ACK 0 of the OACK. */
  inOack: boolean;
  clientCode?: number;
  clientMessage?: string;
  errno?: number;
}

/** A file range for sendFile (agent/tftp/native/file_send.c): both descriptors are dup()ed at once. */
export interface FileSendOptions {
  /** A connected, non-blocking TCP socket (the response's). */
  socketFd: number;
  /** A regular file holding [start, end); JS may close it as soon as sendFile returned. */
  fileFd: number;
  start: number;
  end: number;
  /** Give up when the socket took no byte for this long. */
  idleMs: number;
}

export interface FileSendResult {
  outcome: 'complete' | 'socket-error' | 'read-error' | 'timeout' | 'cancelled';
  /** Bytes handed to the socket. */
  bytes: number;
  errno?: number;
}

export interface NativeAddon {
  start(options: NativeStartOptions, onDone: (r: NativeResult) => void): object;
  cancel(handle: object, notify: boolean): void;
  /** Absent in an addon built before file_send.c: the HTTP file sender then uses its JS path. */
  sendFile?(options: FileSendOptions, onDone: (r: FileSendResult) => void): object;
  cancelSend?(handle: object): void;
  cork?(socketFd: number, on: boolean): void;
}

export type AddonLoad = { ok: true; addon: NativeAddon; path: string } | { ok: false; reason: string };

const ADDON = 'underlay_tftp.node';
/** From agent/tftp/ (sources under vitest) and from dist/agent/tftp/ (built). */
const CANDIDATES = [`./native/build/Release/${ADDON}`, `../../../agent/tftp/native/build/Release/${ADDON}`];

export function loadNativeAddon(candidates: string[] = CANDIDATES, base: string = import.meta.url): AddonLoad {
  const require = createRequire(base);
  const paths = candidates.map((c) => fileURLToPath(new URL(c, base)));
  const path = paths.find((p) => existsSync(p));
  if (!path) return { ok: false, reason: `addon not built (${ADDON} not found; run npm run build)` };
  try {
    const addon = require(path) as Partial<NativeAddon>;
    if (typeof addon.start !== 'function' || typeof addon.cancel !== 'function') return { ok: false, reason: `${path} is not the TFTP data-path addon` };
    return { ok: true, addon: addon as NativeAddon, path };
  } catch (err) {
    return { ok: false, reason: `${path} failed to load: ${(err as Error).message}` };
  }
}

let cached: AddonLoad | undefined;
/** The addon, loaded once per process. */
export function nativeAddon(): AddonLoad {
  cached ??= loadNativeAddon();
  return cached;
}

export type DataPathChoice = { path: 'native'; addon: NativeAddon } | { path: 'js'; warning?: string };

/**
 * Which data path a server uses: native when wanted and the addon loaded, else JS (with a warning to log
 * once when native was wanted but is unavailable).
 */
export function selectDataPath(wanted: 'auto' | 'js', load: () => AddonLoad = nativeAddon): DataPathChoice {
  if (wanted === 'js') return { path: 'js' };
  const l = load();
  if (l.ok) return { path: 'native', addon: l.addon };
  return { path: 'js', warning: l.reason };
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));
const errnoName = (n: number | undefined) => (n === undefined ? 'unknown' : (errnoNames.get(n) ?? `errno ${n}`));

/** The native report as the JS path's TransferResult (same outcomes and error strings as ReadTransfer). */
export function toTransferResult(r: NativeResult, size: number, blksize: number, cancelReason: string | undefined): TransferResult {
  const base = { retransmits: r.retransmits, duplicateAcks: r.duplicateAcks };
  const acked = Math.min(r.ackedBlocks * blksize, size);
  switch (r.outcome) {
    case 'complete':
      return { ...base, outcome: 'complete', bytes: size };
    case 'client-error': {
      const probe = r.inOack && (r.clientCode === 0 || r.clientCode === 8);
      if (probe) return { ...base, outcome: 'size-probe', bytes: acked };
      return { ...base, outcome: 'error', bytes: acked, error: `client error ${r.clientCode}: ${r.clientMessage ?? ''}` };
    }
    case 'timeout':
      return { ...base, outcome: 'error', bytes: acked, error: 'timeout' };
    case 'socket-error':
      return { ...base, outcome: 'error', bytes: acked, error: `socket error: ${errnoName(r.errno)}` };
    case 'read-error':
      return { ...base, outcome: 'error', bytes: acked, error: `read error: ${r.errno ? errnoName(r.errno) : 'file shrank during transfer'}` };
    case 'cancelled':
      return { ...base, outcome: 'error', bytes: acked, error: cancelReason ?? 'cancelled' };
  }
}

/** One running native transfer; `abort` matches ReadTransfer.abort. */
export class NativeTransfer {
  private readonly handle: object;
  private done = false;
  private cancelReason: string | undefined;

  constructor(
    private readonly addon: NativeAddon,
    o: NativeStartOptions,
    onDone: (result: TransferResult, raw: NativeResult) => void,
  ) {
    this.handle = addon.start(o, (raw) => {
      this.done = true;
      onDone(toTransferResult(raw, o.size, o.blksize, this.cancelReason), raw);
    });
  }

  /** Ask the transfer thread to stop (it tells the client when `notify`); onDone follows. */
  abort(reason: string, notify = true): void {
    if (this.done) return;
    this.cancelReason ??= reason;
    this.addon.cancel(this.handle, notify);
  }
}
