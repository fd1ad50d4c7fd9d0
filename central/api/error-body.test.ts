import { OpenAPIHono } from '@hono/zod-openapi';
import { describe, expect, it } from 'vitest';
import { ConflictError, DomainError, DOMAIN_STATUS, ForbiddenError, InvalidError, NotFoundError, UnavailableError } from '../../shared/errors/domain-errors.js';
import { StorageFullError, StorageUnavailableError } from '../../shared/fs/storage-errors.js';
import { silentLogger } from '../../shared/log/logger.js';
import { UniqueConflictError } from '../store/types.js';
import { createApp } from './app.js';
import type { ApiDeps } from './deps.js';
import type { CentralFeature } from './feature.js';
import { mapDomainError } from './error-body.js';

const details = [{ path: 'site', message: 'unknown site' }];

/** An app whose one route throws `err`: what a client sees of a domain error thrown deep in a service. */
async function thrownOverHttp(err: unknown): Promise<{ status: number; body: unknown; headers: Headers }> {
  const throwing: CentralFeature = {
    name: 'thrower',
    routes: (app: OpenAPIHono) => {
      app.post('/api/v1/throw', () => {
        throw err;
      });
    },
  };
  const deps = { logger: silentLogger, metrics: { httpDuration: { startTimer: () => () => undefined }, httpRequests: { inc: () => undefined } } } as unknown as ApiDeps;
  const app = createApp(deps, { features: [throwing] });
  const res = await app.request('/api/v1/throw', { method: 'POST' });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

describe('domain errors → HTTP (the one mapping, central/api/error-body.ts)', () => {
  const cases: [string, DomainError, number, string][] = [
    ['NotFoundError', new NotFoundError('machine "x" not found', details), 404, 'not_found'],
    ['ForbiddenError', new ForbiddenError('this token is scoped to site "a"', details), 403, 'forbidden'],
    ['InvalidError', new InvalidError('site "x" does not exist', details), 400, 'invalid_request'],
    ['ConflictError', new ConflictError('task t is already running', details), 409, 'conflict'],
    ['UnavailableError', new UnavailableError('the link is down', details), 503, 'unavailable'],
  ];

  for (const [name, err, status, code] of cases) {
    it(`${name} → ${status} ${code}, message and details kept`, async () => {
      expect(mapDomainError(err)).toEqual({ status, body: { error: { code, message: err.message, details } } });
      const http = await thrownOverHttp(err);
      expect(http.status).toBe(status);
      expect(http.body).toEqual({ error: { code, message: err.message, details } });
    });
  }

  it('every domain error class has a mapping', () => {
    expect(DOMAIN_STATUS.map(([k]) => k.name).sort()).toEqual(['ConflictError', 'ForbiddenError', 'InvalidError', 'NotFoundError', 'UnavailableError']);
  });

  it('a body without details has no details key', async () => {
    expect((await thrownOverHttp(new ConflictError('in use'))).body).toEqual({ error: { code: 'conflict', message: 'in use' } });
  });

  it('the store’s unique-index conflict is a ConflictError: 409 naming the field', async () => {
    const err = new UniqueConflictError('machines', 'mac', '52:54:00:00:00:01');
    expect(err).toBeInstanceOf(ConflictError);
    const http = await thrownOverHttp(err);
    expect(http.status).toBe(409);
    expect(http.body).toEqual({ error: { code: 'conflict', message: 'machines: mac "52:54:00:00:00:01" is already in use', details: [{ path: 'mac', message: '"52:54:00:00:00:01" is already in use' }] } });
  });

  it('storage errors: 507 for a full disk, 503 with Retry-After for other I/O failures', async () => {
    const full = await thrownOverHttp(new StorageFullError('no space left on device', 'ENOSPC'));
    expect(full.status).toBe(507);
    expect(full.body).toMatchObject({ error: { code: 'insufficient_storage' } });
    const io = await thrownOverHttp(new StorageUnavailableError('i/o error', 'EIO'));
    expect(io.status).toBe(503);
    expect(io.headers.get('retry-after')).toBe('10');
    expect(io.body).toMatchObject({ error: { code: 'unavailable' } });
  });

  it('anything else is not a domain error (500 from the app, its message not shown)', async () => {
    expect(mapDomainError(new Error('secret detail'))).toBeUndefined();
    const http = await thrownOverHttp(new Error('secret detail'));
    expect(http.status).toBe(500);
    expect(JSON.stringify(http.body)).not.toContain('secret detail');
  });
});
