import { AsyncLocalStorage } from 'node:async_hooks';

/** Who makes the API write being handled, and through which route (the audit record's "who" and "where"). */
export interface WriteContext {
  tokenId: string;
  tokenName?: string;
  role: string;
  /** The token's site scope, if any. */
  site?: string;
  method: string;
  /** The route pattern, e.g. `/api/v1/machines/:ref`. */
  route: string;
  path: string;
  /** True while the request is being handled (commits after it are not the request's). */
  open: boolean;
}

/**
 * Set by the auth middleware around an authenticated write request (POST, PUT, PATCH, DELETE), so that
 * the store commits the request makes can be recorded with who made them (central/events/audit.ts).
 */
export const writeContext = new AsyncLocalStorage<WriteContext>();

export const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
