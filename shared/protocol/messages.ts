import { TaskProgress } from './task-progress.js';
import { z } from 'zod';
import { JsonTooDeepError, parseJsonWithin } from '../util/json-depth.js';
import { SignedTask } from '../envelope/envelope.js';
import { DesiredState } from './desired-state.js';

/** Wire protocol version; both sides refuse a different major. */
export const PROTOCOL_VERSION = 1;
/** The largest WebSocket message either side accepts. */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** The most items a batch message (`tasks`, `reports`) carries. */
export const MAX_BATCH_ITEMS = 1000;
/** Batch messages are filled up to about this many bytes of items (well under MAX_MESSAGE_BYTES). */
export const BATCH_FILL_BYTES = 1024 * 1024;
/**
 * Optional capabilities, announced in hello (agent) and welcome (central); a side uses one only when the
 * other announced it, so an older peer never receives a message type it does not know.
 * - `batch`: `tasks` (several signed tasks in one frame) and `reports` (several reports in one frame).
 * - `cert-renew`: the agent may renew its client certificate over the link (`cert-renew` → `cert-renewed`
 *   or `cert-renew-refused`).
 */
export const Feature = z.enum(['batch', 'cert-renew']);
export type Feature = z.infer<typeof Feature>;
/** This build's features (both sides). */
export const FEATURES: Feature[] = ['batch', 'cert-renew'];
/** Features announced by a peer; unknown names (a newer peer) are ignored, not an error. */
const Features = z.array(z.string().max(64)).max(64).optional().transform((fs) => (fs ?? []).filter((f): f is Feature => Feature.safeParse(f).success));

export const TaskStates = ['queued', 'delivered', 'accepted', 'running', 'succeeded', 'failed', 'rejected', 'cancelled', 'expired'] as const;
export const ReportState = z.enum(['accepted', 'running', 'succeeded', 'failed', 'rejected']);
export type ReportState = z.infer<typeof ReportState>;

// ---- agent → central
export const Hello = z.object({
  type: z.literal('hello'),
  v: z.literal(PROTOCOL_VERSION),
  agentVersion: z.string().max(64),
  stateVersion: z.string().max(128).nullable(),
  lastSeq: z.number().int().min(0),
  features: Features,
});
export const Report = z.object({
  type: z.literal('report'),
  id: z.string().min(1).max(64),
  taskId: z.string().min(1).max(64),
  state: ReportState,
  reason: z.string().max(64).optional(),
  output: z.string().max(1024 * 1024).optional(),
  exitCode: z.number().int().optional(),
  /** Latest progress of a running task (image-deploy), kept on the task by the central. */
  progress: TaskProgress.optional(),
  at: z.string(),
});
export const AgentEvent = z.object({
  type: z.literal('event'),
  id: z.string().min(1).max(64),
  kind: z.string().min(1).max(64),
  data: z.unknown(),
  at: z.string(),
});
/** Several reports in one frame (feature `batch`); applied exactly as if each had come alone, in order. */
export const Reports = z.object({ type: z.literal('reports'), items: z.array(Report).min(1).max(MAX_BATCH_ITEMS) });
export const StateRequest = z.object({ type: z.literal('state-request') });
/** A CSR for a new client key the agent just made (the key never leaves the agent); `id` pairs the answer. */
export const CertRenew = z.object({ type: z.literal('cert-renew'), id: z.string().min(1).max(64), csr: z.string().min(100).max(16_384) });

// ---- either way
export const Ping = z.object({ type: z.literal('ping'), t: z.number() });
export const Pong = z.object({ type: z.literal('pong'), t: z.number() });

// ---- central → agent
export const Welcome = z.object({ type: z.literal('welcome'), v: z.literal(PROTOCOL_VERSION), agent: z.string(), site: z.string(), serverTime: z.string(), features: Features });
export const StateMsg = z.object({ type: z.literal('state'), state: DesiredState });
export const TaskMsg = z.object({ type: z.literal('task'), task: SignedTask });
/** Several signed tasks for one agent in one frame (feature `batch`), in sequence order; handled one by one, in order. */
export const TasksMsg = z.object({ type: z.literal('tasks'), tasks: z.array(SignedTask).min(1).max(MAX_BATCH_ITEMS) });
export const Cancel = z.object({ type: z.literal('cancel'), taskId: z.string() });
export const Ack = z.object({ type: z.literal('ack'), ids: z.array(z.string().max(64)).max(10_000) });
export const ErrorMsg = z.object({ type: z.literal('error'), code: z.string(), message: z.string() });
/** The renewed client certificate for the CSR of `cert-renew` `id` (PEM; the new serial is on the agent's record). */
export const CertRenewed = z.object({ type: z.literal('cert-renewed'), id: z.string().min(1).max(64), certificate: z.string().min(100).max(16_384) });
/** Why a `cert-renew` was refused (`revoked`, `invalid-csr`, `too-soon`, `unavailable`); the agent retries with backoff. */
export const CertRenewRefused = z.object({ type: z.literal('cert-renew-refused'), id: z.string().min(1).max(64), code: z.string().max(64), message: z.string().max(1024) });

export const AgentToCentral = z.discriminatedUnion('type', [Hello, Report, Reports, AgentEvent, StateRequest, CertRenew, Ping, Pong]);
export type AgentToCentral = z.infer<typeof AgentToCentral>;
export const CentralToAgent = z.discriminatedUnion('type', [Welcome, StateMsg, TaskMsg, TasksMsg, Cancel, Ack, Ping, Pong, ErrorMsg, CertRenewed, CertRenewRefused]);
export type CentralToAgent = z.infer<typeof CentralToAgent>;

export type ReportMsg = z.infer<typeof Report>;
export type EventMsg = z.infer<typeof AgentEvent>;
export type CertRenewMsg = z.infer<typeof CertRenew>;
export type CertRenewAnswer = z.infer<typeof CertRenewed> | z.infer<typeof CertRenewRefused>;

/** Parses one WebSocket text frame; returns a reason instead of throwing. */
export function parseMessage<T>(schema: z.ZodType<T>, data: unknown): { ok: true; msg: T } | { ok: false; reason: string } {
  let text: string;
  if (typeof data === 'string') text = data;
  else if (Buffer.isBuffer(data)) text = data.toString('utf8');
  else if (Array.isArray(data)) text = Buffer.concat(data as Buffer[]).toString('utf8');
  else if (data instanceof ArrayBuffer) text = Buffer.from(data).toString('utf8');
  else return { ok: false, reason: 'unsupported frame type' };
  let json: unknown;
  try {
    json = parseJsonWithin(text);
  } catch (e) {
    return { ok: false, reason: e instanceof JsonTooDeepError ? `frame is ${e.message}` : 'frame is not JSON' };
  }
  const r = schema.safeParse(json);
  if (!r.success) return { ok: false, reason: r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ') };
  return { ok: true, msg: r.data };
}
