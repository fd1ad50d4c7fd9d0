import { z } from 'zod';

/**
 * One change of an audit record: the object and its before/after (secrets masked), or for tasks and
 * workflow runs (audited by reference) the fields an update changed and a summary (kind, state, agent …).
 */
export const AuditChange = z.object({
  object: z.string().describe('KIND/NAME, e.g. machine/m1'),
  collection: z.string(),
  id: z.string(),
  op: z.enum(['create', 'update', 'delete']),
  before: z.unknown().optional(),
  after: z.unknown().optional(),
  fields: z.array(z.string()).optional().describe('tasks and runs (audited by reference): the top-level fields an update changed'),
  summary: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional().describe('tasks and runs (audited by reference): kind, state, site, agent, machine …'),
});

/** A record of the event stream: an agent event (`agent`, `data`) or the audit record of an API write (`source: 'api'`). */
export const EventRecord = z
  .object({
    id: z.string(),
    kind: z.string(),
    at: z.string(),
    receivedAt: z.string().optional(),
    site: z.string().optional(),
    agent: z.string().optional().describe('agent events: the agent that sent it'),
    data: z.unknown().optional().describe('agent events: what the agent reported'),
    source: z.literal('api').optional().describe('audit records of API writes'),
    actor: z.object({ tokenId: z.string(), tokenName: z.string().optional(), role: z.string(), site: z.string().optional() }).optional(),
    method: z.string().optional(),
    route: z.string().optional(),
    path: z.string().optional(),
    objects: z.array(z.string()).optional(),
    changes: z.array(AuditChange).optional().describe('each object changed: before/after with secrets masked, or by reference (tasks, runs)'),
  })
  .meta({ id: 'Event' });
export type EventRecord = z.infer<typeof EventRecord>;

export const EventPage = z.object({ items: z.array(EventRecord), total: z.number().int(), next: z.string().describe('cursor for `after`') }).meta({ id: 'EventPage' });
export type EventPage = z.infer<typeof EventPage>;
