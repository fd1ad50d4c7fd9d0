import { basename } from 'node:path';

/**
 * Typed errors for a write that could not be made durable. Stores and journals throw these; only the HTTP
 * layers map them to status codes (507 for a full disk or quota, 503 for any other I/O error).
 */
export class StorageError extends Error {
  constructor(
    message: string,
    /** The errno code behind it (ENOSPC, EDQUOT, EIO …), or SHORT_WRITE. */
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The disk (or the quota) is full: nothing of the write was kept; retry once space is freed. */
export class StorageFullError extends StorageError {}

/** Any other I/O failure: nothing of the write was kept. */
export class StorageUnavailableError extends StorageError {}

const FULL = new Set(['ENOSPC', 'EDQUOT', 'SHORT_WRITE']);

/**
 * Wraps a failed file operation on `file` in the matching typed error (a StorageError passes through).
 * The message names the file only by its base name: it reaches HTTP clients and /healthz.
 */
export function storageError(e: unknown, file: string): StorageError {
  if (e instanceof StorageError) return e;
  const code = (e as NodeJS.ErrnoException)?.code ?? 'EIO';
  return FULL.has(code)
    ? new StorageFullError(`disk full: ${code} writing ${basename(file)}`, code, { cause: e })
    : new StorageUnavailableError(`storage unavailable: ${code} writing ${basename(file)}`, code, { cause: e });
}
