import type pg from 'pg';
import { InvalidError } from '../../../shared/errors/domain-errors.js';
import { StaleWriteError } from '../stale-write.js';
import { UniqueConflictError, type CollectionSpec, type Doc, type WriteOp } from '../types.js';

/** One committed change as stored in `underlay_changes` and replayed by every replica. */
export interface ChangeRow {
  seq: number;
  collection: string;
  id: string;
  type: 'put' | 'delete';
  doc: Doc | null;
  before: Doc | null;
}

/**
 * Writes one commit in one transaction (synchronous commit: acknowledged means committed) and returns
 * its change rows. Compare-and-set: each op carries the document this replica saw before it (`expected`);
 * when the database holds another version (another replica wrote it first) nothing is written and
 * StaleWriteError is thrown. Unique values are claimed in `underlay_uniques`, whose primary key refuses
 * a value another document holds, on any replica. The sequence numbers come from the one-row counter,
 * taken last: its row lock orders commits, so the change log is in commit order without gaps.
 */
export async function writeCommit(client: pg.ClientBase, specs: (name: string) => CollectionSpec | undefined, ops: WriteOp[], expected: (Doc | undefined)[]): Promise<ChangeRow[]> {
  await client.query('BEGIN');
  try {
    const rows: Omit<ChangeRow, 'seq'>[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      const id = op.type === 'put' ? op.doc.id : op.id;
      const prev = expected[i];
      const before = (await client.query<{ doc: Doc }>('SELECT doc FROM underlay_docs WHERE collection = $1 AND id = $2 FOR UPDATE', [op.collection, id])).rows[0]?.doc;
      if (!sameDoc(before, prev)) throw new StaleWriteError(op.collection, id);
      if (op.type === 'put') {
        await client.query('INSERT INTO underlay_docs (collection, id, doc) VALUES ($1, $2, $3) ON CONFLICT (collection, id) DO UPDATE SET doc = EXCLUDED.doc', [op.collection, id, JSON.stringify(op.doc)]);
      } else if (before) {
        await client.query('DELETE FROM underlay_docs WHERE collection = $1 AND id = $2', [op.collection, id]);
      }
      await claimUniques(client, specs(op.collection), op, id);
      if (op.type === 'put' || before) rows.push({ collection: op.collection, id, type: op.type, doc: op.type === 'put' ? op.doc : null, before: before ?? null });
    }
    if (rows.length === 0) {
      await client.query('COMMIT');
      return [];
    }
    const last = Number((await client.query<{ seq: string }>('UPDATE underlay_counter SET seq = seq + $1 RETURNING seq', [rows.length])).rows[0].seq);
    const first = last - rows.length + 1;
    const changes = rows.map((r, i) => ({ ...r, seq: first + i }));
    await client.query(
      `INSERT INTO underlay_changes (seq, collection, id, type, doc, before)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[])`,
      [changes.map((c) => c.seq), changes.map((c) => c.collection), changes.map((c) => c.id), changes.map((c) => c.type), changes.map((c) => (c.doc ? JSON.stringify(c.doc) : null)), changes.map((c) => (c.before ? JSON.stringify(c.before) : null))],
    );
    await client.query("SELECT pg_notify('underlay_changes', $1)", [String(last)]);
    await client.query('COMMIT');
    return changes;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw mapPgError(e);
  }
}

/** Replaces the unique values `id` holds with the ones the op's document claims; a value held by another document is a conflict. */
async function claimUniques(client: pg.ClientBase, spec: CollectionSpec | undefined, op: WriteOp, id: string): Promise<void> {
  if (!spec || spec.unique.length === 0) return;
  await client.query('DELETE FROM underlay_uniques WHERE collection = $1 AND id = $2', [op.collection, id]);
  if (op.type !== 'put') return;
  const fields: string[] = [];
  const values: string[] = [];
  for (const u of spec.unique) {
    for (const v of u.values(op.doc)) {
      fields.push(u.field);
      values.push(v);
    }
  }
  if (values.length === 0) return;
  const taken = await client.query<{ field: string; value: string }>(
    `INSERT INTO underlay_uniques (collection, field, value, id) SELECT $1, f, v, $2 FROM unnest($3::text[], $4::text[]) AS t(f, v)
     ON CONFLICT DO NOTHING RETURNING field, value`,
    [op.collection, id, fields, values],
  );
  if (taken.rowCount === values.length) return;
  const got = new Set(taken.rows.map((r) => `${r.field}\0${r.value}`));
  const i = fields.findIndex((f, k) => !got.has(`${f}\0${values[k]}`));
  throw new UniqueConflictError(op.collection, fields[i], values[i]);
}

/** Documents compare by their JSON form as PostgreSQL keeps it (jsonb orders keys): both go through it. */
function sameDoc(a: Doc | undefined, b: Doc | undefined): boolean {
  if (!a || !b) return !a && !b;
  return canonical(a) === canonical(JSON.parse(JSON.stringify(b)));
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** PostgreSQL refuses NUL characters in text and jsonb: that is the input's fault, not the database's. */
function mapPgError(e: unknown): unknown {
  const code = (e as { code?: string }).code;
  if (code === '22P05' || code === '22021') return new InvalidError('a value contains a character the database cannot store (NUL)', [{ path: '', message: 'NUL character' }]);
  return e;
}
