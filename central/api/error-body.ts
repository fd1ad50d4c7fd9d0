import { StorageFullError, StorageUnavailableError } from '../../shared/fs/storage-errors.js';
import { DOMAIN_STATUS, DomainError } from '../../shared/errors/domain-errors.js';

/** The one error body every API error has. */
export interface ErrorBodyT {
  error: { code: string; message: string; details?: unknown };
}

export interface MappedError {
  status: 400 | 403 | 404 | 409 | 503 | 507;
  body: ErrorBodyT;
  /** Extra response headers (Retry-After). */
  headers?: Record<string, string>;
}

/**
 * Maps a domain or storage error to its status and body; undefined for anything else (the app's error
 * handler deals with ApiError, HTTPException and the unexpected). Only the HTTP layer calls this.
 */
export function mapDomainError(err: unknown): MappedError | undefined {
  if (err instanceof DomainError) {
    const [, status, code] = DOMAIN_STATUS.find(([k]) => err instanceof k) ?? [DomainError, 400, 'invalid_request'];
    return { status, body: { error: { code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } } };
  }
  // Nothing of the write was kept (the store rolled it back): say why, and that a retry may work later.
  if (err instanceof StorageFullError) {
    return { status: 507, body: { error: { code: 'insufficient_storage', message: `the central's disk is full; the write was not saved (${err.message})` } } };
  }
  if (err instanceof StorageUnavailableError) {
    return { status: 503, headers: { 'Retry-After': '10' }, body: { error: { code: 'unavailable', message: `the central's storage failed; the write was not saved (${err.message})` } } };
  }
  return undefined;
}
