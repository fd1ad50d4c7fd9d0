/**
 * Appends strings as UTF-8 into one reusable scratch buffer and hands out exact-size copies: many small
 * strings become one Buffer without ever building (and flattening) one large string. Synchronous use
 * only; the scratch grows to the largest piece taken and is kept.
 */
export class ByteWriter {
  private scratch: Buffer;
  private off = 0;

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

  /** What was written since the last take, as a new Buffer of its own. */
  take(): Buffer {
    const out = Buffer.allocUnsafeSlow(this.off);
    this.scratch.copy(out, 0, 0, this.off);
    this.off = 0;
    return out;
  }
}
