import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { ErrorBody, ListQueryParams, pageOf } from '../../shared/api/common.js';
import { DeployRequest, MachineEvent, MachineState, ReleaseRequest, WAIT_FAILED_CODE, WAIT_TIMEOUT_CODE } from '../../shared/api/lifecycle.js';
import { Machine } from '../../shared/api/resources.js';
import { parseDuration } from '../../shared/util/duration.js';
import { Duration } from '../../shared/api/duration.js';
import { ApiError } from '../api/api-error.js';
import { lookupScoped } from '../api/crud.js';
import type { ApiDeps } from '../api/deps.js';
import { NotFoundError } from '../../shared/errors/domain-errors.js';
import { requirePermission } from '../api/auth-middleware.js';
import { scopeOf } from '../auth/scope.js';
import type { TokenDoc } from '../auth/tokens.js';
import { MACHINES, machinesResource } from '../machines/resources.js';
import { deploy, release, rescue, type ActionResult } from './actions.js';
import type { Lifecycle } from './lifecycle.js';
import { eventsOf } from './machine-events.js';
import { DEFAULT_WAIT_MS, MAX_WAIT_MS, waitForState } from './wait.js';

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const err = (description: string) => ({ description, content: json(ErrorBody) });
const Ref = z.object({ ref: z.string().min(1).max(128).describe('machine id or name') });
const ActionAccepted = z
  .object({ machine: Machine, task: z.object({ id: z.string(), kind: z.string(), state: z.string() }).optional().describe('the signed task the action queued (none for a rescue of a machine already in the runner environment)') })
  .meta({ id: 'MachineActionAccepted' });
const WaitQuery = z.object({
  state: MachineState.describe('the state to wait for'),
  timeout: Duration.optional().describe(`give up after this long (default 5m, at most ${MAX_WAIT_MS / 60_000}m per request)`),
});

/**
 * Machine lifecycle routes: the actions (deploy, release, rescue), the long-poll wait and the events.
 * Actions need the write permission (operator) and the machine in the token's site, like other machine
 * writes; wait and events are reads.
 */
export function registerLifecycleRoutes(app: OpenAPIHono, deps: ApiDeps, lc: () => Lifecycle): void {
  const read = requirePermission(deps.tokens, 'read');
  const write = requirePermission(deps.tokens, 'write');
  const security = [{ bearer: [] }];
  const tags = ['Machines'];
  const machineOf = (c: Context, ref: string) => lookupScoped<Machine>(deps, MACHINES, 'machine', ref, scopeOf(c));
  const caller = (c: Context) => ({ tokenId: (c.get('token') as TokenDoc | undefined)?.id });
  const accepted = (c: Context, r: ActionResult) =>
    c.json({ machine: machinesResource.view!(r.machine, deps), ...(r.task ? { task: { id: r.task.id, kind: r.task.kind, state: r.task.state } } : {}) } as never, 202);
  const actionErrors = { 400: err('Invalid request (unknown image or boot environment, bad params)'), 401: err('Missing or invalid bearer token'), 403: err('The token’s role or site does not allow this'), 404: err('No such machine'), 409: err('The machine’s state does not allow this action (the message names what it needs), or its site has no agent to run the task'), 413: err('Body too large'), 415: err('Body must be application/json') };

  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/machines/{ref}/deploy', tags, security, operationId: 'deploy_machine',
      summary: 'Deploy an image: signs an image-deploy task for the machine’s runner; ready|failed → deploying',
      middleware: [write] as const,
      request: { params: Ref, body: { content: json(DeployRequest), required: true } },
      responses: { 202: { description: 'Deploying; follow it with GET /machines/{ref}/wait?state=deployed', content: json(ActionAccepted) }, ...actionErrors },
    }),
    async (c) => accepted(c, await deploy(lc(), machineOf(c, c.req.valid('param').ref).id, c.req.valid('json') as DeployRequest, caller(c))),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/machines/{ref}/release', tags, security, operationId: 'release_machine',
      summary: 'Release: a signed release task wipes the disks and netboots the machine into discovery; deployed|failed|rescue → releasing (→ ready when discovery sees it)',
      middleware: [write] as const,
      request: { params: Ref, body: { content: json(ReleaseRequest), required: false } },
      responses: { 202: { description: 'Releasing', content: json(ActionAccepted) }, ...actionErrors },
    }),
    async (c) => {
      // The body is optional (default: a quick wipe); when given it was validated like any other.
      const body = (c.req.valid('json') as ReleaseRequest | undefined) ?? ReleaseRequest.parse({});
      return accepted(c, await release(lc(), machineOf(c, c.req.valid('param').ref).id, body, caller(c)));
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/api/v1/machines/{ref}/rescue', tags, security, operationId: 'rescue_machine',
      summary: 'Rescue: boot the runner environment without touching the disks (boot environment discovery, netboot on; a deployed machine gets a reboot task)',
      middleware: [write] as const,
      request: { params: Ref },
      responses: { 202: { description: 'In rescue', content: json(ActionAccepted) }, ...actionErrors },
    }),
    async (c) => accepted(c, await rescue(lc(), machineOf(c, c.req.valid('param').ref).id, caller(c))),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/machines/{ref}/wait', tags, security, operationId: 'wait_machine',
      summary: 'Wait until the machine is in a state (long poll); 408 at the timeout, 409 at once if it lands in failed',
      middleware: [read] as const,
      request: { params: Ref, query: WaitQuery },
      responses: {
        200: { description: 'The machine, in the state asked for', content: json(Machine) },
        400: err('Invalid request'),
        401: err('Missing or invalid bearer token'),
        403: err('The token’s role does not allow this'),
        404: err('No such machine (or it was deleted while waiting)'),
        408: err(`Timed out (code ${WAIT_TIMEOUT_CODE}); details carry the current state: ask again to keep waiting`),
        409: err(`The machine is failed (code ${WAIT_FAILED_CODE}); details carry the reason`),
      },
    }),
    async (c) => {
      const ref = c.req.valid('param').ref;
      const q = c.req.valid('query');
      const m = machineOf(c, ref);
      let timeout: number;
      try {
        timeout = Math.min(q.timeout ? parseDuration(q.timeout) : DEFAULT_WAIT_MS, MAX_WAIT_MS);
      } catch (e) {
        throw ApiError.badRequest((e as Error).message, [{ path: 'timeout', message: 'not a duration' }]);
      }
      const r = await waitForState(deps.store, deps.changes, m.id, q.state, timeout, c.req.raw.signal);
      if (r.outcome === 'gone') throw new NotFoundError(`machine "${ref}" was deleted`);
      if (r.outcome === 'reached') return c.json(machinesResource.view!(r.machine, deps) as never, 200);
      if (r.outcome === 'failed') {
        throw new ApiError(409, WAIT_FAILED_CODE, `machine "${r.machine.name}" failed: ${r.machine.stateReason ?? 'no reason recorded'}`, { state: 'failed', reason: r.machine.stateReason ?? null });
      }
      throw new ApiError(408, WAIT_TIMEOUT_CODE, `machine "${r.machine.name}" is ${r.machine.state}, not ${q.state}, after ${q.timeout ?? '5m'}`, { state: r.machine.state, wanted: q.state, reason: r.machine.stateReason ?? null });
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/api/v1/machines/{ref}/events', tags, security, operationId: 'list_machine_events',
      summary: 'The machine’s lifecycle events, oldest first: from, to, cause, reason, time (the newest 200 are kept)',
      middleware: [read] as const,
      request: { params: Ref, query: ListQueryParams },
      responses: { 200: { description: 'A page of events', content: json(pageOf(MachineEvent, 'MachineEventPage')) }, 401: err('Missing or invalid bearer token'), 403: err('The token’s role does not allow this'), 404: err('No such machine') },
    }),
    (c) => {
      const m = machineOf(c, c.req.valid('param').ref);
      const q = c.req.valid('query');
      const all = eventsOf(deps.store, m.id);
      return c.json({ items: all.slice(q.offset, q.offset + q.limit), total: all.length, limit: q.limit, offset: q.offset } as never, 200);
    },
  );
}
