import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { ErrorBody, ListQueryParams, pageOf } from '../../shared/api/common.js';
import { RunView, StartRuns } from '../../shared/api/workflows.js';
import { NotFoundError } from '../../shared/errors/domain-errors.js';
import { parseDuration } from '../../shared/util/duration.js';
import { Duration } from '../../shared/api/duration.js';
import { requirePermission } from '../api/auth-middleware.js';
import { lookupScoped } from '../api/crud.js';
import type { Machine } from '../../shared/api/resources.js';
import { MACHINES } from '../machines/resources.js';
import type { ApiDeps } from '../api/deps.js';
import { requireVisible, scopedWhere, scopeOf } from '../auth/scope.js';
import type { RunEngine } from './engine.js';
import { RUNS } from './resources.js';
import { runTargets } from './start.js';
import type { RunDoc } from './state-machine.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const err = (description: string) => ({ description, content: json(ErrorBody) });
const E = { 400: err('Invalid request'), 401: err('Missing or invalid bearer token'), 403: err('The token’s role or site does not allow this'), 404: err('No such run or machine') };
const IdParam = z.object({ id: z.string().min(1).max(64).describe('run id') });
const MachineRef = z.object({ ref: z.string().min(1).max(128).describe('machine id or name') });
const RunList = z.object({ items: z.array(RunView), total: z.number().int() }).meta({ id: 'RunList' });
const RunsQuery = ListQueryParams.extend({ workflow: z.string().max(63).optional(), machine: z.string().max(128).optional(), state: z.enum(['running', 'waiting', 'succeeded', 'failed', 'cancelled']).optional() });
const WatchQuery = z.object({
  since: z.string().max(64).optional().describe('the updatedAt you have: answers once the run changed after it (long poll)'),
  wait: Duration.optional().describe('longest wait (default 30s, at most 5m)'),
});

/** `/api/v1/runs` and `POST /api/v1/machines/{ref}/workflow`: start, list, show, watch, continue, cancel, retry. */
export function registerRunRoutes(app: OpenAPIHono, deps: ApiDeps, engine: RunEngine): void {
  const read = requirePermission(deps.tokens, 'read');
  const write = requirePermission(deps.tokens, 'write');
  const security = [{ bearer: [] }];
  const tags = ['Runs'];
  const runOf = (c: Context, id: string): RunDoc => {
    const r = engine.get(id);
    if (!r) throw new NotFoundError(`run "${id}" not found`);
    requireVisible(scopeOf(c), r.site, 'run', id);
    return r;
  };

  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/runs', tags, security, operationId: 'start_runs',
      summary: 'Start a workflow on machines (by name or a selector): one run per machine',
      middleware: [write] as const,
      request: { body: { content: json(StartRuns), required: true } },
      responses: { 201: { description: 'The runs started', content: json(RunList) }, ...E, 409: err('A machine already runs a workflow') },
    }),
    async (c) => {
      const t = runTargets(deps.store, c.req.valid('json') as StartRuns, scopeOf(c));
      const runs = await engine.start(t.workflow, t.machines);
      return c.json({ items: runs, total: runs.length } as never, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/machines/{ref}/workflow', tags: ['Machines', ...tags], security, operationId: 'start_machine_workflow',
      summary: 'Start a workflow on one machine',
      middleware: [write] as const,
      request: { params: MachineRef, body: { content: json(z.object({ workflow: z.string().min(1).max(63) }).strict()), required: true } },
      responses: { 201: { description: 'The run', content: json(RunView) }, ...E, 409: err('The machine already runs a workflow') },
    }),
    async (c) => {
      const body = c.req.valid('json') as { workflow: string };
      const m = lookupScoped<Machine>(deps, MACHINES, 'machine', c.req.valid('param').ref, scopeOf(c)); // another site's machine: 404
      const t = runTargets(deps.store, { workflow: body.workflow, machines: [m.id] }, scopeOf(c));
      const [run] = await engine.start(t.workflow, t.machines);
      return c.json(run as never, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/runs', tags, security, operationId: 'list_runs', summary: 'List runs (newest first)',
      middleware: [read] as const,
      request: { query: RunsQuery },
      responses: { 200: { description: 'Runs', content: json(pageOf(RunView, 'RunPage')) }, ...E },
    }),
    (c) => {
      const q = c.req.valid('query');
      const where = scopedWhere(scopeOf(c), { ...(q.workflow ? { workflow: q.workflow } : {}), ...(q.machine ? { machineName: q.machine } : {}) });
      const items = deps.store
        .list<RunDoc>(RUNS, { where: where && Object.keys(where).length ? where : undefined })
        .items.filter((r) => !q.state || r.status.state === q.state)
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      return c.json({ items: items.slice(q.offset, q.offset + q.limit), total: items.length, limit: q.limit, offset: q.offset } as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/runs/{id}', tags, security, operationId: 'get_run',
      summary: 'Show a run: each stage’s gate and each step’s state, task ids, output and timings (?since=…&wait=30s blocks until it changes)',
      middleware: [read] as const,
      request: { params: IdParam, query: WatchQuery },
      responses: { 200: { description: 'The run', content: json(RunView) }, ...E },
    }),
    async (c) => {
      const id = c.req.valid('param').id;
      const q = c.req.valid('query');
      let run = runOf(c, id);
      if (q.since && run.updatedAt === q.since) {
        const ms = Math.min(q.wait ? parseDuration(q.wait) : 30_000, 300_000);
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            off();
            c.req.raw.signal.removeEventListener('abort', done);
            resolve();
          };
          const off = deps.changes.on((ch) => {
            if (ch.collection === RUNS && ch.id === id) done();
          });
          const timer = setTimeout(done, ms);
          c.req.raw.signal.addEventListener('abort', done, { once: true });
        });
        run = runOf(c, id);
      }
      return c.json(run as never, 200);
    },
  );

  const verb = (name: 'continue' | 'cancel' | 'retry', summary: string, act: (id: string) => Promise<RunDoc>) =>
    app.openapi(
      createRoute({
        method: 'post', path: `/api/v1/runs/{id}/${name}`, tags, security, operationId: `${name}_run`, summary,
        middleware: [write] as const,
        request: { params: IdParam },
        responses: { 200: { description: 'The run', content: json(RunView) }, ...E, 409: err('The run’s state does not allow this') },
      }),
      async (c) => {
        const id = runOf(c, c.req.valid('param').id).id;
        return c.json((await act(id)) as never, 200);
      },
    );
  verb('continue', 'Approve the gate the run waits at (a stage with approval: true)', (id) => engine.approve(id));
  verb('cancel', 'Cancel a run (a task not yet running is withdrawn)', (id) => engine.cancel(id));
  verb('retry', 'Retry a failed run from its failed step', (id) => engine.retry(id));
}
