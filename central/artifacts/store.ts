import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncDir } from '../../shared/fs/durable.js';

export const SHA256_RE = /^[0-9a-f]{64}$/;

/** Content-addressed artifact files under DATA/artifacts/<sha256>. */
export class ArtifactFiles {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  path(sha: string): string {
    if (!SHA256_RE.test(sha)) throw new Error('not a sha256');
    return join(this.dir, sha);
  }

  has(sha: string): boolean {
    return SHA256_RE.test(sha) && existsSync(this.path(sha));
  }

  size(sha: string): number {
    return statSync(this.path(sha)).size;
  }

  /** Removes the bytes (durably); a missing file is not an error. */
  async remove(sha: string): Promise<void> {
    await unlink(this.path(sha)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    await fsyncDir(this.dir);
  }

  read(sha: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.path(sha), range);
  }

  /**
   * Streams a body to disk, hashing as it goes; keeps it only if the hash is the one promised.
   * Durable (fsync + rename + directory fsync) before it returns.
   */
  async put(expected: string, body: Readable, maxBytes: number): Promise<{ size: number }> {
    const tmp = join(this.dir, `.upload-${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        body,
        async function* (src: AsyncIterable<Buffer>) {
          for await (const chunk of src) {
            size += chunk.length;
            if (size > maxBytes) throw new Error(`artifact larger than the ${maxBytes}-byte limit`);
            hash.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(tmp, { mode: 0o600 }),
      );
      const got = hash.digest('hex');
      if (got !== expected) throw new HashMismatch(expected, got);
      const fh = await open(tmp, 'r');
      await fh.sync();
      await fh.close();
      await rename(tmp, this.path(expected));
      await fsyncDir(this.dir);
      return { size };
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }
}

export class HashMismatch extends Error {
  constructor(
    readonly expected: string,
    readonly got: string,
  ) {
    super(`content hash is sha256:${got}, not the promised sha256:${expected}`);
  }
}
