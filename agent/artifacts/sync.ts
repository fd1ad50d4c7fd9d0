import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { fsyncDir } from '../../shared/fs/durable.js';
import type { Logger } from '../../shared/log/logger.js';
import type { DesiredState } from '../../shared/protocol/desired-state.js';

export interface ArtifactSyncOptions {
  centralUrl: string;
  tls: { key: string; cert: string; ca: string };
  /** Artifacts land in <dir>/<sha256>; the agent serves them at /files/sha256/<sha256>. */
  dir: string;
  logger: Logger;
}

/**
 * Pulls the artifacts the central holds into the agent's boot dir, content-addressed and verified, so
 * machines boot from the rack even when the rack has no internet (and no central). Downloads one at a
 * time; a failed one is retried on the next state change or tick.
 */
export class ArtifactSync {
  private wanted: DesiredState['artifacts'] = [];
  private running: Promise<void> | null = null;
  private readonly byUrl = new Map<string, string>();
  private timer: NodeJS.Timeout;

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

  /** The local /files/ path for an upstream URL, if its artifact is here. */
  localPath(url: string): string | undefined {
    const sha = this.byUrl.get(url);
    return sha ? `sha256/${sha}` : undefined;
  }

  private reindex(): void {
    this.byUrl.clear();
    for (const a of this.wanted) if (existsSync(join(this.o.dir, a.sha256))) for (const u of a.urls) this.byUrl.set(u, a.sha256);
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
    for (const a of this.wanted) {
      if (existsSync(join(this.o.dir, a.sha256))) continue;
      try {
        await this.download(a.sha256);
        this.o.logger.info({ sha256: a.sha256, size: a.size }, 'artifact pulled from the central');
        this.reindex();
      } catch (e) {
        this.o.logger.warn({ sha256: a.sha256, err: (e as Error).message }, 'artifact pull failed; will retry');
      }
    }
  }

  private async download(sha: string): Promise<void> {
    const tmp = join(this.o.dir, `.pull-${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    try {
      await new Promise<void>((resolve, reject) => {
        const req = request(`${this.o.centralUrl}/api/v1/artifacts/${sha}`, { key: this.o.tls.key, cert: this.o.tls.cert, ca: this.o.tls.ca }, (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`central answered HTTP ${res.statusCode}`));
            return;
          }
          const out = createWriteStream(tmp, { mode: 0o644 });
          res.on('data', (c: Buffer) => hash.update(c));
          res.pipe(out);
          out.on('finish', () => resolve());
          out.on('error', reject);
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      const got = hash.digest('hex');
      if (got !== sha) throw new Error(`downloaded bytes hash to ${got}, not ${sha}`);
      const fh = await open(tmp, 'r');
      await fh.sync();
      await fh.close();
      await rename(tmp, join(this.o.dir, sha));
      await fsyncDir(this.o.dir);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
