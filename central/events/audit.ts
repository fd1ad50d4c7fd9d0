import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { AuditChange as AuditChangeSchema } from '../../shared/api/events.js';
import { writeContext, type WriteContext } from '../api/write-context.js';
import { AGENTS, EVENTS } from '../agents/collections.js';
import { MACHINE_EVENTS } from '../lifecycle/machine-events.js';
import { PARAMS } from '../params/resources.js';
import { RUNS } from '../runs/resources.js';
import { TASKS } from '../tasks/collection.js';
import type { Doc, Store, WriteOp } from '../store/types.js';
import { maskSecrets } from './mask.js';

/** The kind of the audit records in the event stream. */
export const AUDIT_KIND = 'api-write';

/** Collections whose writes are records themselves, not inventory: not audited. */
const NOT_AUDITED = new Set([EVENTS, MACHINE_EVENTS]);

export type AuditChange = z.infer<typeof AuditChangeSchema>;

/**
 * Collections audited by reference: their documents are large (a task's signed envelope and payload, a
 * run's definition and step records) and written in batches (100 task creates per request, each also
 * bumping its agent's sequence number), so a change
 * names the object, the fields it changed and a few identifying scalars instead of masked before/after
 * copies, which doubled the journal's bytes and the central's CPU per task (docs/decisions.md). The
 * object itself is one GET away (`underlay task get ID`, `underlay run get ID`).
 */
const BY_REFERENCE = new Set([TASKS, RUNS, AGENTS]);

/** The scalars of a by-reference change's summary, when the document has them. */
const SUMMARY_FIELDS = ['kind', 'state', 'status', 'site', 'agent', 'machine', 'machineName', 'workflow', 'seq', 'secret'] as const;

function summaryOf(doc: Doc): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const k of SUMMARY_FIELDS) {
    const v = doc[k];
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

/** The top-level fields an update set, changed or removed (compared by identity: writes copy what they change). */
function changedFields(prev: Doc, next: Doc): string[] {
  const out: string[] = [];
  for (const k of Object.keys(next)) if (prev[k] !== next[k]) out.push(k);
  for (const k of Object.keys(prev)) if (!(k in next)) out.push(k);
  return out;
}

export interface AuditRecord extends Doc {
  kind: typeof AUDIT_KIND;
  source: 'api';
  at: string;
  receivedAt: string;
  actor: { tokenId: string; tokenName?: string; role: string; site?: string };
  method: string;
  route: string;
  path: string;
  /** The objects the write changed (`--object machine/m1` matches one of them). */
  objects: string[];
  changes: AuditChange[];
  /** The site of the objects changed, when they belong to one (site-scoped tokens see only their site). */
  site?: string;
}

export function objectRef(collection: string, doc: Doc | undefined, id: string): string {
  const noun = collection.endsWith('s') ? collection.slice(0, -1) : collection;
  const name = doc && typeof doc.name === 'string' ? doc.name : id;
  return `${noun}/${name}`;
}

/** The audit record of one commit made by an API write, or null when it changes nothing audited. */
export function auditRecord(ctx: WriteContext, ops: WriteOp[], before: (id: { collection: string; id: string }) => Doc | undefined, secretParams: Set<string>, now = new Date()): AuditRecord | null {
  const changes: AuditChange[] = [];
  const sites = new Set<string>();
  for (const op of ops) {
    if (NOT_AUDITED.has(op.collection)) continue;
    const id = op.type === 'put' ? op.doc.id : op.id;
    const prev = before({ collection: op.collection, id });
    if (op.type === 'delete' && !prev) continue;
    const after = op.type === 'put' ? op.doc : undefined;
    for (const d of [prev, after]) if (d && typeof d.site === 'string') sites.add(d.site);
    const object = objectRef(op.collection, after ?? prev, id);
    const kind = op.type === 'delete' ? 'delete' : prev ? 'update' : 'create';
    if (BY_REFERENCE.has(op.collection)) {
      changes.push({ object, collection: op.collection, id, op: kind, summary: summaryOf((after ?? prev)!), ...(prev && after ? { fields: changedFields(prev, after) } : {}) });
      continue;
    }
    changes.push({
      object,
      collection: op.collection,
      id,
      op: kind,
      ...(prev ? { before: maskSecrets(prev, secretParams) } : {}),
      ...(after ? { after: maskSecrets(after, secretParams) } : {}),
    });
  }
  if (changes.length === 0) return null;
  const at = now.toISOString();
  return {
    id: randomUUID(),
    kind: AUDIT_KIND,
    source: 'api',
    at,
    receivedAt: at,
    actor: { tokenId: ctx.tokenId, ...(ctx.tokenName ? { tokenName: ctx.tokenName } : {}), role: ctx.role, ...(ctx.site ? { site: ctx.site } : {}) },
    method: ctx.method,
    route: ctx.route,
    path: ctx.path,
    objects: [...new Set(changes.map((c) => c.object))],
    changes,
    ...(sites.size === 1 ? { site: [...sites][0]! } : {}),
  };
}

/**
 * Makes every commit an API write request makes carry its audit record: one more put (into the event
 * stream) in the same commit, so an acknowledged write and its record are durable together or not at
 * all (kill -9, full disk). Commits outside a request (agent events, sweeps, retention) are not audited.
 */
export function installAudit(store: Store, secretParams: () => Set<string>): void {
  const commit = store.commit.bind(store);
  store.commit = (ops: WriteOp[]) => {
    const ctx = writeContext.getStore();
    if (!ctx?.open || ops.length === 0) return commit(ops);
    // A param made secret in this very commit masks its values too (their plaintext is in `before`).
    const secrets = secretParams();
    for (const op of ops) if (op.type === 'put' && op.collection === PARAMS && op.doc.secret === true) secrets.add(String(op.doc.name));
    const record = auditRecord(ctx, ops, (r) => store.get(r.collection, r.id), secrets);
    return commit(record ? [...ops, { type: 'put', collection: EVENTS, doc: record }] : ops);
  };
}
