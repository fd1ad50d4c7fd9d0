import type { ErrorBody } from '../../shared/api/common.js';
import { ConflictError, DOMAIN_STATUS, DomainError, InvalidError, UnavailableError } from '../../shared/errors/domain-errors.js';
import { StorageError } from '../../shared/fs/storage-errors.js';

/**
 * The errors of the agent's machine-facing HTTP surface and their one mapping to HTTP. Services and
 * route modules throw the shared domain errors (shared/errors/domain-errors.ts) or the agent's own kinds
 * below (each a subclass of one of them); only `errorResponse` turns an error into a status code, headers
 * and the one error body. Messages are safe to show to any client on the provisioning network: they
 * never carry tokens, params or rendered content.
 */

/** No credential, or one that is unknown, expired or superseded. */
export class UnauthenticatedError extends DomainError {
  constructor(message = 'a boot session credential is required') {
    super(message);
  }
}
/** A boot token already claimed by another client: the second claim is refused (and raised as an event). */
export class ClaimRefusedError extends ConflictError {
  constructor(
    readonly machineId: string,
    readonly mac: string,
    readonly holderRemote: string,
  ) {
    super('this boot token was already claimed by another client');
  }
}
/** Secrets of this deploy were already served to another session; the operator must re-arm. */
export class SecretsGoneError extends ConflictError {
  constructor() {
    super('this configuration carries secrets that were already served for this deploy; ask the operator to re-arm the machine');
  }
}
/** A body over the route's size limit. */
export class PayloadTooLargeError extends InvalidError {}
/** Too many requests for this MAC or source: retry after `retryAfterSec`. */
export class RateLimitedError extends UnavailableError {
  constructor(readonly retryAfterSec: number) {
    super('too many requests; slow down');
  }
}
/** The agent is serving as many boot files as it takes at once: 503, retry after `retryAfterSec` (iPXE does). */
export class BusyError extends UnavailableError {
  constructor(readonly retryAfterSec: number) {
    super('the agent is serving as many boot files as it can; retry after the Retry-After delay');
  }
}
/** A rendered boot file or script failed (its id is in the message; the reason only in the agent's log). */
export class RenderFailedError extends DomainError {}

/** Seconds a client should wait after a 503 (outbox or disk full). */
export const UNAVAILABLE_RETRY_SEC = 30;

/** Most specific first: a subclass maps before the kind it extends. */
const MAPPING: [new (...a: never[]) => DomainError, number, string][] = [
  [UnauthenticatedError, 401, 'unauthenticated'],
  [SecretsGoneError, 410, 'gone'],
  [PayloadTooLargeError, 413, 'payload_too_large'],
  [RateLimitedError, 429, 'rate_limited'],
  [RenderFailedError, 500, 'render_error'],
  // The shared kinds map as they do on the central.
  ...DOMAIN_STATUS,
];

/** Disk errors of a write the agent could not make durable: the client retries, nothing was acknowledged. */
const STORAGE_ERRNO = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS']);

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: ErrorBody;
  /** Why the caller should log it: a storage failure or an unexpected error (a bug); domain errors are not logged. */
  log?: 'storage' | 'internal';
}

/** Status, headers and the one JSON error body for anything a route threw (the only place errors map to HTTP). */
export function errorResponse(err: unknown): ErrorResponse {
  const storage = err instanceof StorageError || STORAGE_ERRNO.has((err as NodeJS.ErrnoException | undefined)?.code ?? '');
  const e = storage ? new UnavailableError('the agent cannot write to its disk right now; retry later') : err;
  const mapped = e instanceof DomainError ? MAPPING.find(([kind]) => e instanceof kind) : undefined;
  if (!mapped) return { status: 500, headers: {}, body: { error: { code: 'internal', message: 'internal error' } }, log: 'internal' };
  const d = e as DomainError;
  const retryAfter = d instanceof RateLimitedError || d instanceof BusyError ? d.retryAfterSec : d instanceof UnavailableError ? UNAVAILABLE_RETRY_SEC : undefined;
  return {
    status: mapped[1],
    headers: retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) },
    body: { error: { code: mapped[2], message: d.message, ...(d.details ? { details: d.details } : {}) } },
    ...(storage ? { log: 'storage' as const } : {}),
  };
}
