import { randomUUID } from 'node:crypto';
import type { Role } from '../../shared/api/resources.js';
import { parseDuration } from '../../shared/util/duration.js';
import type { Store } from '../store/types.js';
import { formatToken, newTokenSecret, parseToken, secretMatches } from './token-secret.js';

export const TOKENS = 'tokens';

export interface TokenDoc {
  [key: string]: unknown;
  id: string;
  name?: string;
  role: Role;
  site?: string;
  oneTime: boolean;
  hash: string;
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
  usedAt?: string;
}

/** How long an agent-join token is valid unless its creator says otherwise. */
export const DEFAULT_JOIN_TOKEN_TTL = '24h';
/** The `ttl` of a token that never expires. */
export const NO_EXPIRY = 'never';

export interface TokenInput {
  role: Role;
  site?: string;
  name?: string;
  /** A duration ("30m", "24h", "7d") or "never". */
  ttl?: string;
  oneTime?: boolean;
}

export type AuthFailure = 'missing' | 'malformed' | 'unknown' | 'expired' | 'revoked' | 'used';

/** Bearer tokens: created with a role (and optionally a site and expiry), stored hashed, revocable. */
export class TokenService {
  /** lastUsedAt is kept in memory: persisting it on every request would cost an fsync per read. */
  private readonly lastUsed = new Map<string, string>();

  constructor(private readonly store: Store) {}

  async create(input: TokenInput): Promise<{ doc: TokenDoc; token: string }> {
    const created = this.draft(input);
    await this.store.put(TOKENS, created.doc);
    return created;
  }

  /**
   * A new token's record and secret, not yet stored (for writes that commit it with other changes). An
   * agent-join token expires after DEFAULT_JOIN_TOKEN_TTL unless `ttl` says otherwise; `ttl: 'never'`
   * makes a token that never expires (a deliberate choice; the default for the other roles).
   */
  draft(input: TokenInput): { doc: TokenDoc; token: string } {
    const { id, secret, hash } = newTokenSecret();
    const now = Date.now();
    const ttl = input.ttl ?? (input.role === 'agent-join' ? DEFAULT_JOIN_TOKEN_TTL : undefined);
    const doc: TokenDoc = {
      id,
      role: input.role,
      oneTime: input.oneTime ?? input.role === 'agent-join',
      hash,
      createdAt: new Date(now).toISOString(),
      ...(input.name ? { name: input.name } : {}),
      ...(input.site ? { site: input.site } : {}),
      ...(ttl && ttl !== NO_EXPIRY ? { expiresAt: new Date(now + parseDuration(ttl)).toISOString() } : {}),
    };
    return { doc, token: formatToken(id, secret) };
  }

  /** Checks a presented bearer token; never throws. */
  authenticate(bearer: string | undefined): { ok: true; token: TokenDoc } | { ok: false; reason: AuthFailure } {
    if (!bearer) return { ok: false, reason: 'missing' };
    const parsed = parseToken(bearer);
    if (!parsed) return { ok: false, reason: 'malformed' };
    const doc = this.store.get<TokenDoc>(TOKENS, parsed.id);
    if (!doc || !secretMatches(parsed.secret, doc.hash)) return { ok: false, reason: 'unknown' };
    if (doc.revokedAt) return { ok: false, reason: 'revoked' };
    if (doc.expiresAt && Date.parse(doc.expiresAt) <= Date.now()) return { ok: false, reason: 'expired' };
    if (doc.oneTime && doc.usedAt) return { ok: false, reason: 'used' };
    this.lastUsed.set(doc.id, new Date().toISOString());
    return { ok: true, token: doc };
  }

  /** Marks a one-time token used; returns false if it already was (a concurrent use lost). */
  async consume(id: string): Promise<boolean> {
    const doc = this.store.get<TokenDoc>(TOKENS, id);
    if (!doc || doc.usedAt) return false;
    await this.store.put(TOKENS, { ...doc, usedAt: new Date().toISOString() });
    return true;
  }

  get(id: string): TokenDoc | undefined {
    return this.store.get<TokenDoc>(TOKENS, id);
  }

  async revoke(id: string): Promise<TokenDoc | undefined> {
    const doc = this.get(id);
    if (!doc) return undefined;
    const next = { ...doc, revokedAt: doc.revokedAt ?? new Date().toISOString() };
    await this.store.put(TOKENS, next);
    return next;
  }

  /** The public view: never the hash. */
  view(doc: TokenDoc): Record<string, unknown> {
    const { hash: _hash, ...rest } = doc;
    const lastUsedAt = this.lastUsed.get(doc.id);
    return lastUsedAt ? { ...rest, lastUsedAt } : rest;
  }
}

export function newId(): string {
  return randomUUID();
}
