/**
 * Domain errors of the agent's machine-facing HTTP surface. Services throw these; only the HTTP layer
 * (agent/http/app.ts, `machineErrorResponse`) turns them into status codes. Messages are safe to show
 * to any client on the provisioning network: they never carry tokens, params or rendered content.
 */
export class MachineHttpError extends Error {
  override name = 'MachineHttpError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
/** No credential, or one that is unknown, expired or superseded. */
export class UnauthenticatedError extends MachineHttpError {
  override name = 'UnauthenticatedError';
  constructor(message = 'a boot session credential is required') {
    super('unauthenticated', message);
  }
}
/** A credential that is genuine but not allowed to do this. */
export class ForbiddenError extends MachineHttpError {
  override name = 'ForbiddenError';
  constructor(message: string) {
    super('forbidden', message);
  }
}
/** A boot token already claimed by another client: the second claim is refused (and raised as an event). */
export class ClaimRefusedError extends MachineHttpError {
  override name = 'ClaimRefusedError';
  constructor(
    readonly machineId: string,
    readonly mac: string,
    readonly holderRemote: string,
  ) {
    super('conflict', 'this boot token was already claimed by another client');
  }
}
/** A one-time action already done (e.g. a deploy's installed-OS credential already issued). */
export class ConflictError extends MachineHttpError {
  override name = 'ConflictError';
  constructor(message: string) {
    super('conflict', message);
  }
}
/** Secrets of this deploy were already served to another session; the operator must re-arm. */
export class SecretsGoneError extends MachineHttpError {
  override name = 'SecretsGoneError';
  constructor() {
    super('gone', 'this configuration carries secrets that were already served for this deploy; ask the operator to re-arm the machine');
  }
}
export class NotFoundError extends MachineHttpError {
  override name = 'NotFoundError';
  constructor(message: string) {
    super('not_found', message);
  }
}
export class InvalidRequestError extends MachineHttpError {
  override name = 'InvalidRequestError';
  constructor(message: string) {
    super('invalid_request', message);
  }
}
export class PayloadTooLargeError extends MachineHttpError {
  override name = 'PayloadTooLargeError';
  constructor(message: string) {
    super('payload_too_large', message);
  }
}
/** Too many requests for this MAC or source: retry after `retryAfterSec`. */
export class RateLimitedError extends MachineHttpError {
  override name = 'RateLimitedError';
  constructor(readonly retryAfterSec: number) {
    super('rate_limited', 'too many requests; slow down');
  }
}
/** The agent cannot take the write now (outbox full, disk full): retry after `retryAfterSec`. */
export class UnavailableError extends MachineHttpError {
  override name = 'UnavailableError';
  constructor(
    message: string,
    readonly retryAfterSec = 30,
  ) {
    super('unavailable', message);
  }
}

const STATUS: Record<string, number> = {
  unauthenticated: 401,
  forbidden: 403,
  conflict: 409,
  gone: 410,
  not_found: 404,
  invalid_request: 400,
  payload_too_large: 413,
  rate_limited: 429,
  unavailable: 503,
};

/** Status, headers and JSON body for a domain error (the only place these map to HTTP). */
export function machineErrorResponse(e: MachineHttpError): { status: number; headers: Record<string, string>; body: { error: { code: string; message: string } } } {
  const retry: Record<string, string> = e instanceof RateLimitedError || e instanceof UnavailableError ? { 'retry-after': String(e.retryAfterSec) } : {};
  return { status: STATUS[e.code] ?? 500, headers: retry, body: { error: { code: e.code, message: e.message } } };
}
