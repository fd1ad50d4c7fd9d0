import type { Stats } from 'node:fs';

/**
 * A small LRU of whole small files (iPXE binaries are 70 KB to 1 MB and every booting machine asks
 * for them), bounded by total bytes. Entries are keyed by real path and checked against the file's
 * identity (device, inode, size, mtime) on every lookup, so a replaced file is never served stale.
 */
export interface FileCacheOptions {
  /** Largest file that is cached (bytes). */
  maxFileBytes: number;
  /** Total bytes held. */
  maxTotalBytes: number;
}

interface Entry {
  key: string;
  bytes: Buffer;
}

function identity(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

export class FileCache {
  private readonly entries = new Map<string, Entry>(); // insertion order = LRU order
  private total = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly opts: FileCacheOptions) {
    if (!(opts.maxFileBytes >= 0) || !(opts.maxTotalBytes >= 0)) throw new Error('cache sizes must be >= 0');
  }

  /** Whether a file of this size is worth caching. */
  accepts(size: number): boolean {
    return size <= this.opts.maxFileBytes && size <= this.opts.maxTotalBytes;
  }

  get(path: string, st: Stats): Buffer | undefined {
    const e = this.entries.get(path);
    if (!e || e.key !== identity(st)) {
      if (e) this.delete(path);
      this.misses++;
      return undefined;
    }
    this.entries.delete(path);
    this.entries.set(path, e);
    this.hits++;
    return e.bytes;
  }

  set(path: string, st: Stats, bytes: Buffer): void {
    if (!this.accepts(bytes.length)) return;
    this.delete(path);
    this.entries.set(path, { key: identity(st), bytes });
    this.total += bytes.length;
    for (const [k] of this.entries) {
      if (this.total <= this.opts.maxTotalBytes) break;
      this.delete(k);
    }
  }

  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.entries.size;
  }

  private delete(path: string): void {
    const e = this.entries.get(path);
    if (!e) return;
    this.total -= e.bytes.length;
    this.entries.delete(path);
  }
}
