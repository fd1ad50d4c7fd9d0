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

export type AuthFailure = 'missing' | 'malformed' | 'unknown' | 'expired' | 'revoked' | 'used';

/** Bearer tokens: created with a role (and optionally a site and expiry), stored hashed, revocable. */
export class TokenService {
  /** lastUsedAt is kept in memory: persisting it on every request would cost an fsync per read. */
  private readonly lastUsed = new Map<string, string>();

  constructor(private readonly store: Store) {}

  async create(input: { role: Role; site?: string; name?: string; ttl?: string; oneTime?: boolean }): Promise<{ doc: TokenDoc; token: string }> {
    const { id, secret, hash } = newTokenSecret();
    const now = Date.now();
    const doc: TokenDoc = {
      id,
      role: input.role,
      oneTime: input.oneTime ?? input.role === 'agent-join',
      hash,
      createdAt: new Date(now).toISOString(),
      ...(input.name ? { name: input.name } : {}),
      ...(input.site ? { site: input.site } : {}),
      ...(input.ttl ? { expiresAt: new Date(now + parseDuration(input.ttl)).toISOString() } : {}),
    };
    await this.store.put(TOKENS, doc);
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
