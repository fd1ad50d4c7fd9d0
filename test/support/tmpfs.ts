import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A small tmpfs mounted for a test (root only) that can be filled to the last byte and freed again, to
 * see what the code does on a full disk (ENOSPC). Always `unmount()` it in afterAll / finally.
 */
export class SmallDisk {
  readonly dir: string;
  private fillers = 0;

  constructor(sizeBytes: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'underlay-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', this.dir]);
  }

  /** Writes a filler file until the disk has no byte left but `leave` (rounded to pages); returns its size. */
  fill(leave = 0): number {
    const path = join(this.dir, `.filler-${this.fillers++}`);
    const fd = openSync(path, 'w');
    const chunk = Buffer.alloc(64 * 1024, 0x55);
    let total = 0;
    try {
      for (let size = chunk.length; size >= 1; ) {
        try {
          total += writeSync(fd, chunk, 0, size);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
          size = Math.floor(size / 2); // top up the last pages byte-exactly
        }
      }
      if (leave > 0) {
        total = Math.max(0, total - leave);
        ftruncateSync(fd, total);
      }
    } finally {
      closeSync(fd);
    }
    return total;
  }

  /** Removes every filler: the space is back. */
  free(): void {
    for (let i = 0; i < this.fillers; i++) {
      try {
        unlinkSync(join(this.dir, `.filler-${i}`));
      } catch {
        /* already gone */
      }
    }
    this.fillers = 0;
  }

  unmount(): void {
    try {
      execFileSync('umount', ['-l', this.dir]);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
