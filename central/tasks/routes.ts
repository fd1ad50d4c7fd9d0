import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { Task, TaskCreate } from '../../shared/api/agents.js';
import { ErrorBody, ListQueryParams, pageOf } from '../../shared/api/common.js';
import { ApiError } from '../api/api-error.js';
import type { ApiDeps } from '../api/deps.js';
import { requirePermission } from '../api/auth-middleware.js';
import { requireVisible, requireWritableSite, scopedWhere, scopeOf } from '../auth/scope.js';
import { TASKS } from './collection.js';
import type { TaskDoc, TaskService } from './service.js';
import { taskView } from './redact.js';
import { roleOf } from '../auth/scope.js';
import { parseDuration } from '../../shared/util/duration.js';
import { InvalidError } from '../../shared/errors/domain-errors.js';
import { TaskWaiters } from './wait.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const err = (d: string) => ({ description: d, content: json(ErrorBody) });
const PreferHeader = z.object({
  prefer: z.string().max(256).optional().describe('`return=minimal`: the task without its payload (the caller sent it; an Ansible module is 100–500 KB)'),
});

/**
 * RFC 7240 `Prefer: return=minimal`: the answer leaves out the task's payload, which the caller already
 * has (the Ansible plugin sends a module with every exec and needs only the id, state and output back).
 */
function minimal(c: Context, view: Omit<TaskDoc, 'signed'>): Omit<TaskDoc, 'signed'> {
  if (!/(^|[\s,;])return=minimal\b/i.test(c.req.header('prefer') ?? '')) return view;
  c.header('Preference-Applied', 'return=minimal');
  c.header('Vary', 'Prefer');
  const { payload: _p, ...rest } = view;
  return rest as Omit<TaskDoc, 'signed'>;
}

export function registerTaskRoutes(app: OpenAPIHono, deps: ApiDeps, tasks: TaskService): void {
  const read = requirePermission(deps.tokens, 'read');
  const write = requirePermission(deps.tokens, 'write');
  const security = [{ bearer: [] }];
  const tags = ['Tasks'];
  const waiters = new TaskWaiters(tasks, deps.changes);

  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/tasks', tags, security, operationId: 'create_task',
      summary: 'Create a task; it is signed and delivered to the site’s agent (now, or when it reconnects)',
      middleware: [write] as const, request: { body: { content: json(TaskCreate), required: true }, headers: PreferHeader },
      responses: { 201: { description: 'Created (without its payload under `Prefer: return=minimal`)', content: json(Task) }, 400: err('invalid'), 401: err('unauthenticated'), 403: err('forbidden'), 409: err('site has no agent') },
    }),
    async (c) => {
      const input = c.req.valid('json') as z.infer<typeof TaskCreate>;
      requireWritableSite(scopeOf(c), input.site);
      return c.json(minimal(c, taskView(await tasks.create(input), roleOf(c))) as never, 201);
    },
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/tasks/batch', tags, security, operationId: 'create_tasks',
      summary: 'Create up to 1,000 tasks at once, all or none (one durable write)',
      middleware: [write] as const, request: { body: { content: json(z.object({ tasks: z.array(TaskCreate).min(1).max(1000) }).strict()), required: true } },
      responses: { 201: { description: 'Created', content: json(z.object({ items: z.array(Task) })) }, 400: err('invalid (details name tasks.<index>)'), 401: err('unauthenticated'), 403: err('forbidden'), 409: err('a site has no agent') },
    }),
    async (c) => {
      const body = c.req.valid('json') as { tasks: z.infer<typeof TaskCreate>[] };
      for (const t of body.tasks) requireWritableSite(scopeOf(c), t.site);
      return c.json({ items: (await tasks.createMany(body.tasks)).map((t) => taskView(t, roleOf(c))) } as never, 201);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/tasks', tags, security, operationId: 'list_tasks', summary: 'List tasks (newest first)',
      middleware: [read] as const,
      request: { query: ListQueryParams.extend({ site: z.string().optional(), machine: z.string().optional(), state: z.string().optional(), kind: z.string().optional() }) },
      responses: { 200: { description: 'Tasks', content: json(pageOf(Task, 'TaskPage')) }, 401: err('unauthenticated'), 403: err('forbidden') },
    }),
    (c) => {
      const q = c.req.valid('query');
      const where: Record<string, string> = {};
      for (const k of ['site', 'machine', 'state', 'kind'] as const) if (q[k]) where[k] = q[k]!;
      const all = deps.store.list<TaskDoc>(TASKS, { where: scopedWhere(scopeOf(c), where), sort: 'createdAt' });
      const items = all.items.reverse().slice(q.offset, q.offset + q.limit);
      return c.json({ items: items.map((t) => taskView(t, roleOf(c))), total: all.total, limit: q.limit, offset: q.offset } as never, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/tasks/{id}', tags, security, operationId: 'get_task',
      summary: 'Show a task with its history; with ?wait=30s (at most 60s) answer once the task is final or at the timeout',
      middleware: [read] as const, request: { params: z.object({ id: z.string().max(64) }), query: z.object({ wait: z.string().max(16).optional() }), headers: PreferHeader },
      responses: { 200: { description: 'Task (without its payload under `Prefer: return=minimal`)', content: json(Task) }, 400: err('invalid wait'), 401: err('unauthenticated'), 403: err('forbidden'), 404: err('not found') },
    }),
    async (c) => {
      const id = c.req.valid('param').id;
      const t = tasks.get(id);
      if (!t) throw ApiError.notFound('task', id);
      requireVisible(scopeOf(c), t.site, 'task', t.id);
      const wait = c.req.valid('query').wait;
      let waitMs = 0;
      if (wait !== undefined) {
        try {
          waitMs = parseDuration(wait);
        } catch (e) {
          throw new InvalidError((e as Error).message, [{ path: 'wait', message: 'not a duration' }]);
        }
      }
      return c.json(minimal(c, taskView((await waiters.finished(id, waitMs)) ?? t, roleOf(c))) as never, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/tasks/{id}/cancel', tags, security, operationId: 'cancel_task', summary: 'Cancel a task that has not started running',
      middleware: [write] as const, request: { params: z.object({ id: z.string().max(64) }) },
      responses: { 200: { description: 'Cancelled', content: json(Task) }, 401: err('unauthenticated'), 403: err('forbidden'), 404: err('not found'), 409: err('already running or finished') },
    }),
    async (c) => {
      const t = tasks.get(c.req.valid('param').id);
      if (!t) throw ApiError.notFound('task', c.req.valid('param').id);
      requireVisible(scopeOf(c), t.site, 'task', t.id);
      return c.json(taskView(await tasks.cancel(t.id), roleOf(c)) as never, 200);
    },
  );
}
