import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { open, rename, truncate, unlink } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { once } from 'node:events';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fsyncDir } from '../../shared/fs/durable.js';
import type { Logger } from '../../shared/log/logger.js';
import type { DesiredState } from '../../shared/protocol/desired-state.js';

export interface ArtifactSyncOptions {
  centralUrl: string;
  tls: { key: string; cert: string; ca: string };
  /** Artifacts land in <dir>/<sha256>; the agent serves them at /files/sha256/<sha256>. */
  dir: string;
  logger: Logger;
  /** Attempts per artifact per pass, each resuming where the last one stopped (default 5). */
  attempts?: number;
  /** A download that receives nothing for this long is dropped and resumed (default 60 s). */
  stallMs?: number;
  /** Pause before a retry, multiplied by the attempt number (default 1 s). */
  retryDelayMs?: number;
}

type Wanted = DesiredState['artifacts'][number];

/** `.partial-<sha256>`: bytes received so far. Hidden (the agent never serves dot-files) and never the final name. */
export const partialName = (sha: string) => `.partial-${sha}`;

/**
 * Pulls the artifacts the central holds into the agent's boot dir, content-addressed and verified, so
 * machines boot from the rack even when the rack has no internet (and no central). Downloads one at a
 * time into `.partial-<sha256>`, resuming with a Range request after a dropped or stalled connection
 * (also across agent restarts); the whole file is hashed before it is renamed to `<sha256>`, so an
 * artifact is never present under its final name unless complete and verified. A failed one is retried
 * on the next state change or tick.
 */
export class ArtifactSync {
  private wanted: Wanted[] = [];
  private running: Promise<void> | null = null;
  private readonly byUrl = new Map<string, string>();
  private readonly byName = new Map<string, string>();
  private timer: NodeJS.Timeout;
  /** Downloads so far (the agent's metrics). */
  readonly pulls = { ok: 0, failed: 0, bytes: 0 };

  constructor(private readonly o: ArtifactSyncOptions) {
    mkdirSync(o.dir, { recursive: true });
    this.timer = setInterval(() => this.kick(), 60_000);
    this.timer.unref();
  }

  update(state: DesiredState | null): void {
    this.wanted = state?.artifacts ?? [];
    this.reindex();
    this.kick();
  }

  /**
   * The local /files/ path standing for an artifact URL, if its artifact is here: an upstream URL the
   * artifact was fetched from, or a boot-dir path (`discovery/vmlinuz`) an artifact is named after.
   */
  localPath(url: string): string | undefined {
    const sha = this.byUrl.get(url) ?? this.byName.get(url);
    return sha ? `sha256/${sha}` : undefined;
  }

  /** Artifacts the desired state names, and how many of them are here. */
  status(): { wanted: number; present: number } {
    return { wanted: this.wanted.length, present: this.wanted.filter((a) => this.present(a.sha256)).length };
  }

  private present(sha: string): boolean {
    return /^[0-9a-f]{64}$/.test(sha) && existsSync(join(this.o.dir, sha));
  }

  private reindex(): void {
    this.byUrl.clear();
    this.byName.clear();
    for (const a of this.wanted) {
      if (!this.present(a.sha256)) continue;
      for (const u of a.urls) this.byUrl.set(u, a.sha256);
      // Only path-like names (discovery/vmlinuz): plain names are image names or labels that older
      // centrals gave fetched files (`vmlinuz`), never a claim on a boot-dir file.
      if (a.name?.includes('/')) this.byName.set(a.name, a.sha256);
    }
  }

  kick(): void {
    if (this.running) return;
    // Runs from a timer and from desired-state callbacks: a failure is logged, never an unhandled rejection.
    this.running = this.pullMissing()
      .catch((e: unknown) => this.o.logger.error({ err: (e as Error).message }, 'artifact sync failed; will retry'))
      .finally(() => {
        this.running = null;
      });
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async pullMissing(): Promise<void> {
    // Smallest first: kernels and initrds (what a boot needs) do not wait behind a multi-GiB disk image.
    for (const a of [...this.wanted].sort((x, y) => x.size - y.size)) {
      if (!/^[0-9a-f]{64}$/.test(a.sha256) || this.present(a.sha256)) continue;
      try {
        await this.download(a);
        this.pulls.ok++;
        this.pulls.bytes += a.size;
        this.o.logger.info({ sha256: a.sha256, size: a.size, ...(a.name ? { name: a.name } : {}) }, 'artifact pulled from the central');
        this.reindex();
      } catch (e) {
        this.pulls.failed++;
        this.o.logger.warn({ sha256: a.sha256, err: (e as Error).message }, 'artifact pull failed; will retry');
      }
    }
  }

  private async download(a: Wanted): Promise<void> {
    const part = join(this.o.dir, partialName(a.sha256));
    const attempts = this.o.attempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.receive(a, part);
        break;
      } catch (e) {
        if (attempt >= attempts || e instanceof Refused) throw e;
        this.o.logger.info({ sha256: a.sha256, attempt, have: sizeOf(part), err: (e as Error).message }, 'artifact download interrupted; resuming');
        await new Promise((r) => setTimeout(r, (this.o.retryDelayMs ?? 1000) * attempt));
      }
    }
    const got = await hashFile(part);
    if (got !== a.sha256) {
      await unlink(part).catch(() => undefined);
      throw new Error(`downloaded bytes hash to ${got}, not ${a.sha256}; discarded`);
    }
    const fh = await open(part, 'r');
    await fh.sync();
    await fh.close();
    await rename(part, join(this.o.dir, a.sha256));
    await fsyncDir(this.o.dir);
  }

  /** Appends the missing tail of the artifact to `part` (the whole thing when the central ignores Range). */
  private async receive(a: Wanted, part: string): Promise<void> {
    let have = sizeOf(part);
    if (have > a.size) {
      await truncate(part, 0);
      have = 0;
    }
    if (have === a.size && a.size > 0) return;
    const res = await this.get(a.sha256, have);
    if (res.statusCode === 416) {
      res.resume();
      await truncate(part, 0);
      throw new Error('central refused the resume range; starting over');
    }
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      res.resume();
      const err = new Error(`central answered HTTP ${res.statusCode}`);
      throw res.statusCode === 404 ? new Refused(err.message) : err;
    }
    const append = res.statusCode === 206 && have > 0;
    // Not pipeline(): on a dropped connection it would destroy the file stream with bytes still buffered;
    // what did arrive is flushed here, so the next attempt resumes from all of it.
    const out = createWriteStream(part, { flags: append ? 'a' : 'w', mode: 0o644 });
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) if (!out.write(chunk)) await once(out, 'drain');
    } finally {
      await new Promise<void>((resolve, reject) => {
        out.once('error', reject);
        out.end(resolve);
      });
    }
    if (sizeOf(part) !== a.size) throw new Error(`connection ended after ${sizeOf(part)} of ${a.size} bytes`);
  }

  private get(sha: string, from: number): Promise<IncomingMessage> {
    const url = `${this.o.centralUrl}/api/v1/artifacts/${sha}`;
    const send = url.startsWith('https:') ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { key: this.o.tls.key, cert: this.o.tls.cert, ca: this.o.tls.ca, headers: from > 0 ? { range: `bytes=${from}-` } : {} }, resolve);
      req.setTimeout(this.o.stallMs ?? 60_000, () => req.destroy(new Error(`no data for ${(this.o.stallMs ?? 60_000) / 1000} s`)));
      req.on('error', reject);
      req.end();
    });
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** The central does not have it: retrying now will not help (the next pass will try again). */
class Refused extends Error {}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash);
  return hash.digest('hex');
}
