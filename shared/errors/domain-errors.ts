/**
 * Typed domain errors: services and helpers (central and agent) throw these; only the HTTP layers
 * (central/api/error-body.ts, the agent's HTTP app) map them to a status code and the one error body
 * `{ error: { code, message, details? } }`.
 */
export type ErrorDetail = { path: string; message: string };

export class DomainError extends Error {
  constructor(
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.name = new.target.name;
  }
}
/** The thing named does not exist (or is not visible to the caller). */
export class NotFoundError extends DomainError {}
/** The caller may not do this. */
export class ForbiddenError extends DomainError {}
/** The input is wrong; `details` names the offending paths. */
export class InvalidError extends DomainError {}
/** The request conflicts with the current state (a name in use, a referenced object, a state that forbids it). */
export class ConflictError extends DomainError {}
/** Something it needs is not available now; a retry may work. */
export class UnavailableError extends DomainError {}

/** Each class's HTTP status and error code (most specific first). Only HTTP layers read this. */
export const DOMAIN_STATUS: [new (...a: never[]) => DomainError, 400 | 403 | 404 | 409 | 503, string][] = [
  [NotFoundError, 404, 'not_found'],
  [ForbiddenError, 403, 'forbidden'],
  [InvalidError, 400, 'invalid_request'],
  [ConflictError, 409, 'conflict'],
  [UnavailableError, 503, 'unavailable'],
];
