import { createHash } from 'node:crypto';
import type { TaskDoc } from './service.js';

/**
 * Payload fields that carry bulk data (base64) for kinds whose payload is transient: an Ansible module on
 * an exec's stdin (~100–300 KB per task), a put-file chunk (up to 512 KiB). The signed envelope carries
 * them to the agent, so the task document keeps only their size and digest (`payloadOmitted`) from its
 * creation on: the bytes are stored once, in the envelope, and gone with it.
 */
const BULK_FIELDS: Readonly<Record<string, readonly string[]>> = { exec: ['stdinB64'], 'put-file': ['dataB64'] };

/** Bulk fields shorter than this stay (a short command's stdin costs nothing to keep). */
const KEEP_BELOW = 1024;

export interface OmittedField {
  /** Decoded size in bytes. */
  bytes: number;
  /** SHA-256 (hex) of the decoded bytes. */
  sha256: string;
}

/**
 * What the store keeps of a task in its new state (applied at creation and to every state change,
 * docs/decisions.md):
 * - the signed envelope only while the task may still be (re)delivered (queued, delivered): after the
 *   agent's first report it is never sent again, and every later write of the task would copy it;
 * - for exec and put-file, the bulk payload fields replaced by their size and digest in every state: while
 *   the task is deliverable its envelope holds them (the agent reads the payload from there, never from
 *   the document), afterwards nothing reads them.
 * Returns the task itself when nothing is dropped.
 */
export function slimmed(t: TaskDoc): TaskDoc {
  const deliverable = t.state === 'queued' || t.state === 'delivered';
  const bulk = bulkFields(t);
  if ((deliverable || t.signed === undefined) && bulk.length === 0) return t;
  const { signed, ...rest } = t;
  const next: TaskDoc = deliverable && signed ? { ...rest, signed } : rest;
  if (bulk.length === 0) return next;
  const payload = { ...(t.payload as Record<string, unknown>) };
  const omitted: Record<string, OmittedField> = { ...(t.payloadOmitted as Record<string, OmittedField> | undefined) };
  for (const f of bulk) {
    const data = Buffer.from(payload[f] as string, 'base64');
    omitted[f] = { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    delete payload[f];
  }
  return { ...next, payload, payloadOmitted: omitted };
}

function bulkFields(t: TaskDoc): string[] {
  const fields = BULK_FIELDS[t.kind];
  const p = t.payload;
  if (!fields || p === null || typeof p !== 'object') return [];
  return fields.filter((f) => typeof (p as Record<string, unknown>)[f] === 'string' && ((p as Record<string, string>)[f]!).length >= KEEP_BELOW);
}
