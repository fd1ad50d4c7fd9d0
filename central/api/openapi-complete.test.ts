import { describe, expect, it } from 'vitest';
import { completeOpenApi, exampleOf } from './openapi-complete.js';

describe('OpenAPI completion', () => {
  it('builds examples from schemas: enums, defaults, formats, patterns and lengths', () => {
    const schemas = { Mac: { type: 'string', pattern: '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' } };
    const ex = exampleOf(
      {
        type: 'object',
        properties: {
          state: { type: 'string', enum: ['ready', 'failed'] },
          wipe: { type: 'string', default: 'quick' },
          at: { type: 'string', format: 'date-time' },
          mac: { $ref: '#/components/schemas/Mac' },
          hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          n: { type: 'integer', minimum: 3 },
          tags: { type: 'array', items: { type: 'string', minLength: 5, maxLength: 5 } },
        },
      } as never,
      schemas as never,
    );
    expect(ex).toEqual({ state: 'ready', wipe: 'quick', at: '2026-01-01T12:00:00.000Z', mac: '52:54:00:12:34:56', hash: '0'.repeat(64), n: 3, tags: ['xxxxx'] });
  });

  it('fills a missing description and example, keeps those an author wrote, and merges strict allOf objects', () => {
    const doc = {
      components: { schemas: { Doc: { allOf: [{ type: 'object', properties: { id: { type: 'string' } }, required: ['id'] }, { type: 'object', properties: { name: { type: 'string' } }, additionalProperties: false }] } } },
      paths: {
        '/x': {
          get: { summary: 'Show x', responses: { 200: { description: 'ok', content: { 'application/json': { schema: { $ref: '#/components/schemas/Doc' } } } }, 404: { description: 'not found' } } },
          post: { summary: 'Make x', description: 'Written by hand.', requestBody: { content: { 'application/json': { schema: { type: 'object' }, example: { mine: true } } } }, responses: {} },
        },
      },
    };
    completeOpenApi(doc);
    const get = doc.paths['/x'].get as Record<string, any>;
    expect(get.description).toBe('Show x. Errors answer with the one error body: 404 not found.');
    expect(get.responses[200].content['application/json'].example).toEqual({ id: 'example', name: 'web-1' });
    expect(doc.components.schemas.Doc).toEqual({ type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } }, required: ['id'], additionalProperties: false });
    const post = doc.paths['/x'].post as Record<string, any>;
    expect(post.description).toBe('Written by hand.');
    expect(post.requestBody.content['application/json'].example).toEqual({ mine: true });
  });

  it('takes another alternative of a oneOf when the first example would not validate', () => {
    const schema = { oneOf: [{ type: 'object', properties: { kind: { const: 'a' }, n: { type: 'integer', minimum: 1 } }, required: ['kind', 'n', 'missing'] }, { type: 'object', properties: { kind: { const: 'b' } }, required: ['kind'] }] };
    const doc = { paths: { '/y': { get: { summary: 'y', responses: { 200: { description: 'ok', content: { 'application/json': { schema } } } } } } } };
    completeOpenApi(doc);
    expect((doc.paths['/y'].get.responses[200].content['application/json'] as Record<string, unknown>).example).toEqual({ kind: 'b' });
  });
});
