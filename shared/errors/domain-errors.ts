/**
 * Typed domain errors: services and helpers throw these; only the HTTP layer (central/api/app.ts)
 * maps them to status codes (not found 404, forbidden 403, invalid 400, conflict 409, unavailable 503).
 */
export class DomainError extends Error {
  constructor(
    message: string,
    readonly details?: { path: string; message: string }[],
  ) {
    super(message);
    this.name = new.target.name;
  }
}
export class NotFoundError extends DomainError {}
export class ForbiddenError extends DomainError {}
export class InvalidError extends DomainError {}
export class DomainConflictError extends DomainError {}
export class UnavailableError extends DomainError {}

export const DOMAIN_STATUS: [new (...a: never[]) => DomainError, 400 | 403 | 404 | 409 | 503, string][] = [
  [NotFoundError, 404, 'not_found'],
  [ForbiddenError, 403, 'forbidden'],
  [InvalidError, 400, 'invalid_request'],
  [DomainConflictError, 409, 'conflict'],
  [UnavailableError, 503, 'unavailable'],
];
