import { ConflictError } from '../../shared/errors/domain-errors.js';

/**
 * A write built on a document another central replica changed first (compare-and-set failed): nothing
 * was written. A conflict (409) for a client; code that read-modify-writes retries with `retryStale`.
 */
export class StaleWriteError extends ConflictError {
  constructor(
    readonly collection: string,
    readonly id: string,
  ) {
    super(`${collection}/${id} was changed by another central replica at the same time; retry`);
  }
}

/**
 * Runs a read-modify-write again while it fails with StaleWriteError (each try reads afresh: the store
 * has caught up with the write it lost to by then). Only one store backend (PostgreSQL) ever throws it.
 */
export async function retryStale<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof StaleWriteError) || i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, Math.random() * 5 * i));
    }
  }
}
