/**
 * Typed domain errors, one class per kind. Services and stores of both sides throw these; only the HTTP
 * layers (the central's API, the agent's machine-facing HTTP in agent/http/errors.ts) map them to status
 * codes and the one error body (`ErrorBody` in shared/api/common.ts). Messages may reach any client:
 * they never carry secrets, tokens or rendered content.
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
/** What was asked for does not exist (or is not visible to the caller). */
export class NotFoundError extends DomainError {}
/** The caller is known but not allowed to do this. */
export class ForbiddenError extends DomainError {}
/** The request itself is wrong (shape, values, size); `details` says where. */
export class InvalidError extends DomainError {}
/** The request collides with the current state (already claimed, already exists, changed meanwhile). */
export class ConflictError extends DomainError {}
/** It cannot be done right now (disk full, outbox full, dependency down); retrying later may work. */
export class UnavailableError extends DomainError {}
