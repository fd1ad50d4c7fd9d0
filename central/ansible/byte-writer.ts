/**
 * Appends strings as UTF-8 into one reusable scratch buffer and hands out each run of writes as a
 * Buffer of its own (`take`), without ever building (and flattening) one large string. Synchronous use
 * only; the scratch grows to the largest run taken and is kept.
 *
 * `reserve` sets aside one large buffer that later runs are copied into (as slices) until it is full:
 * a cold render allocates its ~150 MB of hostvars at 100k hosts in one piece instead of ~400, which
 * V8 sees as one jump of external memory, so it runs one full GC for it instead of one every ~50 MB.
 */
export class ByteWriter {
  private scratch: Buffer;
  private off = 0;
  private slab: Buffer | undefined;
  private slabOff = 0;

  constructor(initial = 1 << 20) {
    this.scratch = Buffer.allocUnsafeSlow(initial);
  }

  write(s: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, 2 units, is 4).
    if (this.scratch.length - this.off < s.length * 3) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.scratch.length * 2, this.off + s.length * 3));
      this.scratch.copy(bigger, 0, 0, this.off);
      this.scratch = bigger;
    }
    this.off += this.scratch.write(s, this.off, 'utf8');
  }

  /** What was written since the last take: a slice of the reserved buffer while it has room, else a Buffer of its own. */
  take(): Buffer {
    let out: Buffer;
    if (this.slab && this.slab.length - this.slabOff >= this.off) {
      out = this.slab.subarray(this.slabOff, this.slabOff + this.off);
      this.slabOff += this.off;
    } else out = Buffer.allocUnsafeSlow(this.off);
    this.scratch.copy(out, 0, 0, this.off);
    this.off = 0;
    return out;
  }

  /** Copy the next runs into one new buffer of `bytes` (until it is full). */
  reserve(bytes: number): void {
    this.slab = Buffer.allocUnsafeSlow(bytes);
    this.slabOff = 0;
  }

  /** Bytes written since the last take. */
  get pending(): number {
    return this.off;
  }

  /** Drop what was not taken and stop using the reserved buffer (what was taken from it stays valid). */
  reset(): void {
    this.off = 0;
    this.slab = undefined;
  }
}
