import { describe, expect, it } from 'vitest';
import { ErrorBody } from '../../shared/api/common.js';
import { ConflictError, DomainError, ForbiddenError, InvalidError, NotFoundError, UnavailableError } from '../../shared/errors/domain-errors.js';
import { StorageFullError, StorageUnavailableError } from '../../shared/fs/storage-errors.js';
import { BusyError, ClaimRefusedError, errorResponse, PayloadTooLargeError, RateLimitedError, RenderFailedError, SecretsGoneError, UnauthenticatedError } from './errors.js';

/** Every kind of error the agent's machine-facing HTTP can meet, and the one answer each gets. */
describe('agent HTTP error mapping', () => {
  const cases: [string, unknown, number, string, Record<string, string>][] = [
    ['NotFoundError', new NotFoundError('no such task for this session'), 404, 'not_found', {}],
    ['ForbiddenError', new ForbiddenError('unknown or expired boot token'), 403, 'forbidden', {}],
    ['InvalidError', new InvalidError('body must be {"token": "<boot token>"}'), 400, 'invalid_request', {}],
    ['ConflictError', new ConflictError('already there'), 409, 'conflict', {}],
    ['UnavailableError', new UnavailableError('outbox full'), 503, 'unavailable', { 'retry-after': '30' }],
    ['UnauthenticatedError', new UnauthenticatedError(), 401, 'unauthenticated', {}],
    ['ClaimRefusedError (a conflict)', new ClaimRefusedError('m-1', '52:54:00:00:00:01', '198.18.0.9'), 409, 'conflict', {}],
    ['SecretsGoneError (a conflict, answered 410)', new SecretsGoneError(), 410, 'gone', {}],
    ['PayloadTooLargeError (invalid, answered 413)', new PayloadTooLargeError('claim body over 1 KiB'), 413, 'payload_too_large', {}],
    ['RateLimitedError (unavailable, answered 429)', new RateLimitedError(7), 429, 'rate_limited', { 'retry-after': '7' }],
    ['BusyError (download slots full, answered 503 with its own delay)', new BusyError(4), 503, 'unavailable', { 'retry-after': '4' }],
    ['RenderFailedError', new RenderFailedError('render error (id 0123456789ab)'), 500, 'render_error', {}],
  ];

  it.each(cases)('%s → its status, code, headers and the one error body with its message', (_name, err, status, code, headers) => {
    const r = errorResponse(err);
    expect(r.status).toBe(status);
    expect(r.headers).toEqual(headers);
    expect(r.body).toEqual({ error: { code, message: (err as Error).message } });
    expect(ErrorBody.safeParse(r.body).success).toBe(true);
    expect(r.log).toBeUndefined();
  });

  it('keeps the details of an invalid request (which field, what is wrong)', () => {
    const details = [{ path: '/cpu/threads', message: 'expected a number' }];
    expect(errorResponse(new InvalidError('facts are invalid', details)).body).toEqual({ error: { code: 'invalid_request', message: 'facts are invalid', details } });
  });

  it('answers a disk failure (typed or a raw errno) with 503 and Retry-After, not the file name or errno text', () => {
    for (const err of [new StorageFullError('disk full: ENOSPC writing outbox.jsonl', 'ENOSPC'), new StorageUnavailableError('storage unavailable: EIO writing x', 'EIO'), Object.assign(new Error('ENOSPC: no space left, write /var/lib/x'), { code: 'ENOSPC' })]) {
      const r = errorResponse(err);
      expect(r).toMatchObject({ status: 503, headers: { 'retry-after': '30' }, log: 'storage' });
      expect(r.body.error.code).toBe('unavailable');
      expect(r.body.error.message).not.toMatch(/ENOSPC|EIO|outbox|\/var/);
    }
  });

  it('answers anything else with a generic 500 that says nothing of the error, and asks the caller to log it', () => {
    for (const err of [new Error('secret detail /etc/shadow'), new DomainError('an untyped domain error'), 'a string', undefined]) {
      const r = errorResponse(err);
      expect(r).toEqual({ status: 500, headers: {}, body: { error: { code: 'internal', message: 'internal error' } }, log: 'internal' });
    }
  });

  it('names each error class after itself (logs and events show the kind)', () => {
    expect(new ClaimRefusedError('m', 'mac', 'r').name).toBe('ClaimRefusedError');
    expect(new NotFoundError('x').name).toBe('NotFoundError');
    expect(new RateLimitedError(1)).toBeInstanceOf(UnavailableError);
  });
});
