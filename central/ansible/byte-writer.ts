/**
 * Appends strings as UTF-8 into a buffer and hands out each run of writes as a Buffer (`take`),
 * without ever building (and flattening) one large string. Synchronous use only.
 *
 * Normally runs are written into a reusable scratch buffer and each is copied out into a Buffer of its
 * own. After `reserve`, runs are written straight into one large new buffer and handed out as slices of
 * it, until it is full: a cold render allocates its ~150 MB of hostvars at 100k hosts in one piece
 * instead of ~400, which V8 sees as one jump of external memory, so it runs one full GC for it
 * instead of one every ~50 MB, and nothing is copied.
 */
export class ByteWriter {
  private scratch: Buffer;
  /** Where runs are written: the scratch, or the reserved buffer. */
  private target: Buffer;
  private start = 0;
  private off = 0;

  constructor(initial = 1 << 20) {
    this.scratch = this.target = Buffer.allocUnsafeSlow(initial);
  }

  private get reserved(): boolean {
    return this.target !== this.scratch;
  }

  write(s: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, 2 units, is 4).
    if (this.target.length - this.off < s.length * 3) this.overflow(s.length * 3);
    this.off += this.target.write(s, this.off, 'utf8');
  }

  /** Appends bytes as they are (already UTF-8). */
  bytes(b: Uint8Array): void {
    if (this.target.length - this.off < b.length) this.overflow(b.length);
    this.target.set(b, this.off);
    this.off += b.length;
  }

  /** The current run does not fit: carry it over into the scratch (grown if need be). */
  private overflow(more: number): void {
    const run = this.off - this.start;
    if (this.scratch.length < run + more) this.scratch = Buffer.allocUnsafeSlow(Math.max(this.scratch.length * 2, run + more));
    this.target.copy(this.scratch, 0, this.start, this.off);
    this.target = this.scratch;
    this.start = 0;
    this.off = run;
  }

  /** Bytes written since the last take. */
  get pending(): number {
    return this.off - this.start;
  }

  /** What was written since the last take: a slice of the reserved buffer, or a copy of its own. */
  take(): Buffer {
    let out: Buffer;
    if (this.reserved) out = this.target.subarray(this.start, this.off);
    else {
      out = Buffer.allocUnsafeSlow(this.off - this.start);
      this.target.copy(out, 0, this.start, this.off);
    }
    this.start = this.off = this.reserved ? this.off : 0;
    return out;
  }

  /** Write the next runs into one new buffer of `bytes` (the pending run moves there too). */
  reserve(bytes: number): void {
    const run = this.off - this.start;
    const slab = Buffer.allocUnsafeSlow(Math.max(bytes, run));
    this.target.copy(slab, 0, this.start, this.off);
    this.target = slab;
    this.start = 0;
    this.off = run;
  }

  /** Drop what was not taken and go back to the scratch (what was taken stays valid). */
  reset(): void {
    this.target = this.scratch;
    this.start = this.off = 0;
  }
}
