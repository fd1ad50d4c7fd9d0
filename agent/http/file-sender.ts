import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { open } from 'node:fs/promises';
import { nativeAddon, type FileSendResult, type NativeAddon } from '../tftp/native-data-path.js';

type FileSendAddon = Required<Pick<NativeAddon, 'sendFile' | 'cancelSend' | 'cork'>>;

/** Bodies each path started sending (for tests). */
export const sentBy = { native: 0, js: 0 };

/** A stalled client is dropped after this when the server set no idle timeout on the socket. */
const DEFAULT_IDLE_MS = 120_000;
const EMPTY = Buffer.alloc(0);

function fileSendAddon(): FileSendAddon | undefined {
  const l = nativeAddon();
  if (!l.ok) return undefined;
  const a = l.addon;
  return typeof a.sendFile === 'function' && typeof a.cancelSend === 'function' && typeof a.cork === 'function' ? (a as FileSendAddon) : undefined;
}

/** The descriptor of a plain TCP socket (TLS and other wrapped sockets have none: they take the JS path). */
function socketFd(socket: Socket | null): number | undefined {
  if (!socket || 'encrypted' in socket) return undefined;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * The response's socket: a response to a request pipelined behind another gets it only once the one
 * before has finished (null when the connection closed first).
 */
function assignedSocket(out: ServerResponse): Promise<Socket | null> | Socket {
  if (out.socket) return out.socket;
  return new Promise((resolve) => {
    const settle = (s: Socket | null) => {
      out.off('socket', onSocket);
      out.off('close', onClose);
      resolve(s);
    };
    const onSocket = (s: Socket) => settle(s);
    const onClose = () => settle(null);
    out.once('socket', onSocket);
    out.once('close', onClose);
  });
}

/**
 * Sends bytes [start, end) of `path` as the body of `out`, whose head was set with writeHead and not
 * yet sent, then ends the response. On a plain TCP socket with the agent's addon built (native ===
 * 'auto'), the body goes with sendfile(2) on the addon's sender threads (agent/tftp/native/file_send.c):
 * no byte of it crosses the event loop or libuv's thread pool, so DHCP on the same loop is not
 * starved. The head is written by Node first (TCP_CORK holds it until the body's first bytes fill the
 * packet); while the body is in flight nothing else writes to the socket (a pipelined request's
 * response waits in Node, see server.ts for a pipelined bad request) and the socket's idle timeout is
 * handed to the addon (which sees the progress Node does not). Otherwise, or when the addon refuses the
 * socket, the JS path below sends it.
 *
 * Resolves when the last byte was handed to the socket, rejects if the client went away or the file
 * ended early (the response is then destroyed).
 */
export async function sendFileRange(out: ServerResponse, path: string, start: number, end: number, o: { native?: 'auto' | 'off' } = {}): Promise<void> {
  const addon = o.native === 'off' ? undefined : fileSendAddon();
  const fd = addon ? socketFd(await assignedSocket(out)) : undefined;
  if (addon && fd !== undefined) {
    const fh = await open(path, 'r');
    let result: FileSendResult | undefined;
    try {
      result = await sendNative(addon, out, fd, fh.fd, start, end);
    } finally {
      await fh.close();
    }
    if (result) {
      if (result.outcome === 'complete') return void out.end();
      out.destroy();
      if (result.outcome === 'read-error') throw new Error(`file ended at byte ${start + result.bytes}, before ${end}${result.errno ? ` (errno ${result.errno})` : ''}`);
      throw new Error(result.outcome === 'cancelled' ? 'client closed the connection' : `transfer ended: ${result.outcome}${result.errno ? ` (errno ${result.errno})` : ''}`);
    }
  }
  sentBy.js++;
  return sendFileRangeJs(out, path, start, end);
}

/**
 * The native body of sendFileRange; undefined when it cannot run (a HEAD, a chunked response, a
 * refused descriptor): the head may be out by then and the JS path sends the body.
 */
async function sendNative(addon: FileSendAddon, out: ServerResponse, fd: number, fileFd: number, start: number, end: number): Promise<FileSendResult | undefined> {
  const socket = out.socket!;
  if (out.req?.method === 'HEAD') return undefined;
  const uncork = () => {
    try {
      addon.cork(fd, false);
    } catch {
      /* the socket is gone: nothing to release */
    }
  };
  try {
    addon.cork(fd, true);
  } catch {
    return undefined;
  }
  out.flushHeaders();
  // Raw bytes need a length-delimited body (the head says content-length, not chunked).
  if ((out as unknown as { chunkedEncoding?: boolean }).chunkedEncoding) return uncork(), undefined;
  // The head must be in the kernel before the addon writes behind Node's back: an empty write's callback
  // comes after every earlier write on the socket completed.
  const flushed = await new Promise<boolean>((resolve) => socket.write(EMPTY, (err) => resolve(!err)));
  if (!flushed || socket.destroyed) return { outcome: 'socket-error', bytes: 0 };
  const idle = socket.timeout ?? 0;
  let onDone!: (r: FileSendResult) => void;
  const done = new Promise<FileSendResult>((r) => (onDone = r));
  let handle: object;
  try {
    handle = addon.sendFile({ socketFd: fd, fileFd, start, end, idleMs: idle || DEFAULT_IDLE_MS }, onDone);
  } catch {
    return uncork(), undefined;
  }
  sentBy.native++;
  socket.setTimeout(0);
  const onClose = () => addon.cancelSend(handle);
  out.once('close', onClose);
  try {
    return await done;
  } finally {
    out.off('close', onClose);
    if (!socket.destroyed && idle) socket.setTimeout(idle);
  }
}

/**
 * The JS path: sends bytes [start, end) of a file into an HTTP response with two pooled buffers per transfer: one is
 * read from the file (thread pool) while the other is being written to the socket, and a buffer is read
 * into again only once its write has completed. No allocation per chunk: a read stream allocates a new
 * buffer for every chunk, and on the agent's small hosts the page faults of that fresh memory cost more
 * CPU than the copies (scripts/bench/images: 100 clients downloading a 1 GiB image). Chunks are large, so
 * a multi-GiB image costs few event-loop turns and DHCP on the same loop is not starved.
 *
 * At most `MAX_READS` file reads run at once, whatever the number of transfers: reads go through
 * libuv's thread pool (4 threads), which the DHCP lease journal's write + fdatasync also need before an
 * ACK; a hundred downloads must not queue a hundred reads in front of them (with the image not in the
 * page cache each read waits for the disk).
 *
 * Resolves when the last byte was handed to the socket, rejects if the client went away or the file
 * ended early (the response is then destroyed); the file is closed and the buffers returned either way.
 */
export const CHUNK_BYTES = 512 * 1024;

class BufferPool {
  private free: Buffer[] = [];
  constructor(
    private readonly size: number,
    private readonly keep: number,
  ) {}
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }
  give(b: Buffer): void {
    if (this.free.length < this.keep) this.free.push(b);
  }
}

/** File reads in flight at once over all transfers (half of libuv's default thread pool). */
export const MAX_READS = 2;

/** A FIFO gate: at most `limit` holders at a time. */
class Gate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
  /** Reads running now (for tests). */
  get running(): number {
    return this.active;
  }
}

export const reads = new Gate(MAX_READS);

/** Kept between transfers: 64 × 512 KiB = 32 MiB at most, enough for 32 concurrent downloads without allocating. */
const pool = new BufferPool(CHUNK_BYTES, 64);

async function sendFileRangeJs(out: ServerResponse, path: string, start: number, end: number): Promise<void> {
  const fh = await open(path, 'r');
  const bufs = [pool.take(), pool.take()];
  const writes: (Promise<void> | undefined)[] = [undefined, undefined];
  let onClose: () => void = () => undefined;
  const closed = new Promise<never>((_, reject) => {
    onClose = () => reject(new Error('client closed the connection'));
    out.once('close', onClose);
  });
  closed.catch(() => undefined);
  try {
    let pos = start;
    for (let i = 0; pos < end; i ^= 1) {
      // The buffer is free again once its previous write reached the socket.
      if (writes[i]) await Promise.race([writes[i], closed]);
      if (out.destroyed) throw new Error('client closed the connection');
      const buf = bufs[i]!;
      const { bytesRead } = await reads.run(() => fh.read(buf, 0, Math.min(buf.length, end - pos), pos));
      if (bytesRead === 0) throw new Error(`file ended at byte ${pos}, before ${end}`);
      pos += bytesRead;
      const chunk = buf.subarray(0, bytesRead);
      writes[i] = new Promise<void>((resolve, reject) => out.write(chunk, (err) => (err ? reject(err) : resolve())));
      writes[i]!.catch(() => undefined);
    }
    await Promise.race([Promise.all(writes), closed]);
    out.end();
  } catch (e) {
    out.destroy();
    throw e;
  } finally {
    out.off('close', onClose);
    await fh.close();
    // A write still pending on a destroyed socket may hold a buffer: only buffers whose write settled go back.
    for (let i = 0; i < 2; i++) {
      const w = writes[i];
      if (!w) pool.give(bufs[i]!);
      else void w.then(() => pool.give(bufs[i]!), () => undefined);
    }
  }
}

/**
 * The one byte range of a `Range` header for a file of `size` bytes: [start, end) or null when the
 * header is absent, not a single `bytes=` range, or unsatisfiable ('unsatisfiable').
 */
export function singleRange(header: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
  if (!Number.isSafeInteger(start) || start >= size || end <= start) return 'unsatisfiable';
  return { start, end };
}
