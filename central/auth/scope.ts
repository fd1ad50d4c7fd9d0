import type { Context } from 'hono';
import { ForbiddenError, NotFoundError } from '../../shared/errors/domain-errors.js';
import type { TokenDoc } from './tokens.js';
import type { Role } from '../../shared/api/resources.js';

/**
 * Site scope. A token created with `--site S` sees and changes only site S (docs/decisions.md):
 * - lists are filtered to S;
 * - an object of another site addressed by id or name answers 404, whatever the method (its existence
 *   is not revealed);
 * - a write that names another site in its body (create a machine at dc1, move one there, queue a task
 *   there, mint a token for it) answers 403;
 * - global objects (profiles, params, boot environments, templates, group rules, artifacts) are
 *   readable, and writing them needs an unscoped token (403).
 * Site names compare case-insensitively, as the store's `where` filters do.
 */
export type Scope = string | undefined;

/** The calling token's site, or undefined for an unscoped token (set by requirePermission). */
export function scopeOf(c: Context): Scope {
  return (c.get('token') as TokenDoc | undefined)?.site;
}

/** The calling token's role (set by requirePermission). */
export function roleOf(c: Context): Role {
  return (c.get('token') as TokenDoc).role;
}

export function inScope(scope: Scope, site: unknown): boolean {
  return scope === undefined || (typeof site === 'string' && site.toLowerCase() === scope.toLowerCase());
}

/** The object must belong to the token's site, else it does not exist for this caller. */
export function requireVisible(scope: Scope, site: unknown, label: string, ref: string): void {
  if (!inScope(scope, site)) throw new NotFoundError(`${label} "${ref}" not found`);
}

/** A write naming `site` must be the token's own site. */
export function requireWritableSite(scope: Scope, site: unknown, what = 'site'): void {
  if (!inScope(scope, site)) throw new ForbiddenError(`this token is scoped to site "${scope}" and may not change ${what} "${String(site)}"`, [{ path: 'site', message: 'outside the token\'s site' }]);
}

/** Global objects (and site creation, tokens without a site …) need an unscoped token to change. */
export function requireUnscoped(scope: Scope, what: string): void {
  if (scope !== undefined) throw new ForbiddenError(`this token is scoped to site "${scope}"; ${what} needs a token without a site`);
}

/** Adds the scope to a list's equality filter (a caller's own `site` filter cannot widen it). */
export function scopedWhere<W extends Record<string, string | number | boolean | null>>(scope: Scope, where: W | undefined, field = 'site'): W | undefined {
  if (scope === undefined) return where;
  if (where && field in where && !inScope(scope, where[field])) return { ...where, [field]: '\u0000none' } as W;
  return { ...(where ?? {}), [field]: scope } as W;
}
