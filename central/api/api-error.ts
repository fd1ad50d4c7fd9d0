import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** The one error type routes throw; the error handler renders `{ error: { code, message, details } }`. */
export class ApiError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(status, { message });
  }

  static notFound(what: string, ref: string): ApiError {
    return new ApiError(404, 'not_found', `${what} "${ref}" not found`);
  }
  static badRequest(message: string, details?: unknown): ApiError {
    return new ApiError(400, 'invalid_request', message, details);
  }
  static conflict(message: string, details?: unknown): ApiError {
    return new ApiError(409, 'conflict', message, details);
  }
}
