import type { FileHandle } from 'node:fs/promises';

/**
 * Where a transfer's bytes come from. A transfer reads forward only (retransmissions reuse the
 * packets it already built), so a streamed source may forget data before the last position asked.
 */
export interface ByteSource {
  readonly size: number;
  /**
   * Bytes [pos, pos+len) clipped to the size, when they are in memory; otherwise undefined (call
   * `load` and ask again). The returned buffer is only valid until the next call: copy it.
   */
  peek(pos: number, len: number): Uint8Array | undefined;
  /** Bring [pos, pos+len) into memory. Rejects on I/O errors. */
  load(pos: number, len: number): Promise<void>;
  close(): Promise<void>;
}

/** A source over bytes already in memory (the small-file cache, netascii, tests). */
export class MemorySource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  peek(pos: number, len: number): Uint8Array {
    return this.bytes.subarray(pos, Math.min(pos + len, this.bytes.length));
  }
  async load(): Promise<void> {}
  async close(): Promise<void> {}
}

/**
 * Streams a file through a FileHandle in fixed chunks with one chunk of read-ahead, so a 200 MB
 * file costs at most three chunks of memory per transfer and lock-step transfers rarely wait on disk.
 */
export class FileSource implements ByteSource {
  private readonly chunks = new Map<number, Buffer>();
  private readonly pending = new Map<number, Promise<void>>();
  private closed = false;
  private scratch: Buffer | undefined;
  private error: Error | undefined;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly chunkSize = 128 * 1024,
  ) {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new Error('chunkSize must be a positive integer');
  }

  /** The open descriptor, for the native data path (which reads with pread; no chunks are loaded then). */
  get fd(): number {
    return this.fh.fd;
  }

  peek(pos: number, len: number): Uint8Array | undefined {
    const end = Math.min(pos + len, this.size);
    if (end <= pos) return new Uint8Array(0);
    const first = Math.floor(pos / this.chunkSize);
    const last = Math.floor((end - 1) / this.chunkSize);
    this.evictBefore(first);
    this.readAhead(last + 1);
    const a = this.chunks.get(first);
    if (!a) return undefined;
    const base = first * this.chunkSize;
    if (first === last) return a.subarray(pos - base, end - base);
    // Spans two chunks (a block is never larger than a chunk: see server).
    const b = this.chunks.get(last);
    if (!b || last !== first + 1) return undefined;
    const need = end - pos;
    if (!this.scratch || this.scratch.length < need) this.scratch = Buffer.allocUnsafe(need);
    const head = a.length - (pos - base);
    a.copy(this.scratch, 0, pos - base);
    b.copy(this.scratch, head, 0, need - head);
    return this.scratch.subarray(0, need);
  }

  async load(pos: number, len: number): Promise<void> {
    if (this.error) throw this.error;
    const end = Math.min(pos + len, this.size);
    if (end <= pos) return;
    const first = Math.floor(pos / this.chunkSize);
    const last = Math.floor((end - 1) / this.chunkSize);
    const waits: Promise<void>[] = [];
    for (let c = first; c <= last; c++) waits.push(this.fetch(c));
    await Promise.all(waits);
    if (this.error) throw this.error;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.chunks.clear();
    // Let in-flight reads finish before closing the descriptor under them.
    await Promise.allSettled([...this.pending.values()]);
    await this.fh.close().catch(() => undefined);
  }

  private evictBefore(chunk: number): void {
    for (const k of this.chunks.keys()) if (k < chunk) this.chunks.delete(k);
  }

  private readAhead(chunk: number): void {
    if (chunk * this.chunkSize >= this.size) return;
    if (this.chunks.has(chunk) || this.pending.has(chunk)) return;
    this.fetch(chunk).catch(() => undefined); // error is kept in this.error and surfaces on load()
  }

  private fetch(chunk: number): Promise<void> {
    if (this.chunks.has(chunk)) return Promise.resolve();
    const inflight = this.pending.get(chunk);
    if (inflight) return inflight;
    if (this.closed) return Promise.reject(new Error('source closed'));
    const start = chunk * this.chunkSize;
    const len = Math.min(this.chunkSize, this.size - start);
    const p = (async () => {
      const buf = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await this.fh.read(buf, got, len - got, start + got);
        if (bytesRead === 0) throw new Error('file shrank during transfer');
        got += bytesRead;
      }
      if (!this.closed) this.chunks.set(chunk, buf);
    })()
      .catch((err: Error) => {
        this.error = err;
        throw err;
      })
      .finally(() => this.pending.delete(chunk));
    this.pending.set(chunk, p);
    return p;
  }
}

/** RFC 764 netascii: LF -> CR LF, CR -> CR NUL. */
export function toNetascii(bytes: Uint8Array): Buffer {
  let extra = 0;
  for (const b of bytes) if (b === 0x0a || b === 0x0d) extra++;
  const out = Buffer.allocUnsafe(bytes.length + extra);
  let j = 0;
  for (const b of bytes) {
    if (b === 0x0a) {
      out[j++] = 0x0d;
      out[j++] = 0x0a;
    } else if (b === 0x0d) {
      out[j++] = 0x0d;
      out[j++] = 0x00;
    } else out[j++] = b;
  }
  return out;
}
