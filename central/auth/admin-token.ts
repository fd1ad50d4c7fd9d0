import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDirSync, writeFileDurableSync } from '../../shared/fs/durable.js';
import type { Logger } from '../../shared/log/logger.js';
import type { Store, WriteOp } from '../store/types.js';
import { parseToken } from './token-secret.js';
import { NO_EXPIRY, TOKENS, type TokenDoc, type TokenService } from './tokens.js';

export const ADMIN_TOKEN_FILE = 'admin.token';

/** The rotation named a token that is not the one in admin.token (someone rotated it meanwhile). */
export class AdminTokenConflictError extends Error {}
const INITIAL_ADMIN_NAME = 'initial admin';

/**
 * The central's own admin token, kept in DATA/admin.token (0600): created at the first start, replaced by
 * `underlay central rotate-admin-token` (POST /api/v1/admin-token/rotate), which revokes the token in the
 * file and writes a new one, in this order: the new token to admin.token.next (durable), the store commit
 * (new token + revocation, atomic), then the rename over admin.token. A crash in between is settled at the
 * next start (settlePending): the pending file is kept if its token is valid, dropped otherwise, so the
 * file always ends up holding a valid admin token. It never expires by default (see docs/decisions.md).
 */
export class AdminTokenFile {
  private readonly path: string;
  private readonly pending: string;
  /** Rotations run one at a time (two at once would leave a stray valid token). */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dataDir: string,
    private readonly store: Store,
    private readonly tokens: TokenService,
    private readonly logger: Logger,
  ) {
    this.path = join(dataDir, ADMIN_TOKEN_FILE);
    this.pending = this.path + '.next';
  }

  /** First start (no file, no token at all): creates the admin token and writes it; returns it once. */
  async ensureInitial(): Promise<string | null> {
    if (existsSync(this.path) || this.store.count(TOKENS) > 0) return null;
    const { token } = await this.tokens.create({ role: 'admin', name: INITIAL_ADMIN_NAME, ttl: NO_EXPIRY });
    writeFileDurableSync(this.path, token + '\n', 0o600);
    return token;
  }

  /** Finishes or drops a rotation a crash interrupted (call at start, before serving). */
  settlePending(): void {
    if (!existsSync(this.pending)) return;
    const token = readFileSync(this.pending, 'utf8').trim();
    if (this.tokens.authenticate(token).ok) {
      renameSync(this.pending, this.path);
      this.logger.warn({ file: this.path }, 'finished an interrupted admin token rotation');
    } else {
      rmSync(this.pending, { force: true });
    }
    fsyncDirSync(this.dataDir);
  }

  /** The id of the token in admin.token, or null (no file, or not a token). */
  currentId(): string | null {
    return existsSync(this.path) ? (parseToken(readFileSync(this.path, 'utf8').trim())?.id ?? null) : null;
  }

  /**
   * Revokes the token in the file (if still valid) and puts a new admin token in its place. `expected` is
   * the id the caller saw in the file (null: none): a compare-and-swap, so two operators rotating at
   * once, or a stray call, cannot revoke a token the caller did not mean.
   */
  rotate(expected: string | null): Promise<{ doc: TokenDoc; token: string; revoked: TokenDoc | null }> {
    const run = this.chain.then(() => this.rotateNow(expected));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async rotateNow(expected: string | null): Promise<{ doc: TokenDoc; token: string; revoked: TokenDoc | null }> {
    const currentId = this.currentId();
    if (currentId !== expected) throw new AdminTokenConflictError(`${ADMIN_TOKEN_FILE} holds token ${currentId ?? '(none)'}, not ${expected ?? '(none)'}: it was rotated meanwhile`);
    const current = currentId ? this.tokens.get(currentId) : undefined;
    const created = this.tokens.draft({ role: 'admin', name: INITIAL_ADMIN_NAME, ttl: NO_EXPIRY });
    const revoked = current && !current.revokedAt ? { ...current, revokedAt: new Date().toISOString() } : null;
    const ops: WriteOp[] = [{ type: 'put', collection: TOKENS, doc: created.doc }];
    if (revoked) ops.push({ type: 'put', collection: TOKENS, doc: revoked });
    writeFileDurableSync(this.pending, created.token + '\n', 0o600);
    try {
      await this.store.commit(ops);
    } catch (e) {
      rmSync(this.pending, { force: true });
      throw e;
    }
    renameSync(this.pending, this.path);
    fsyncDirSync(this.dataDir);
    this.logger.info({ id: created.doc.id, revoked: revoked?.id ?? null }, 'rotated the admin token');
    return { ...created, revoked };
  }
}
