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

/** What became of one commit of a batch: its change rows' sequence numbers, or why it was refused. */
export type CommitOutcome = { ok: true; seqs: number[] } | { ok: false; error: unknown };

/**
 * Writes a batch of commits in one transaction (group commit: one synchronous COMMIT for all of them;
 * acknowledged means committed), each under its own savepoint, so one refused commit leaves the others.
 * Compare-and-set: each op carries the document this replica saw before it (`expected`); when the
 * database holds another version (another replica wrote it first) that commit is refused with
 * StaleWriteError. Unique values are claimed in `underlay_uniques`, whose primary key refuses a value
 * another document holds, on any replica. The sequence numbers come from the one-row counter, taken
 * last: its row lock orders transactions, so the change log is in commit order without gaps.
 * Throws only when the transaction itself failed (then nothing of the batch was written).
 */
export async function writeBatch(
  client: pg.ClientBase,
  specs: (name: string) => CollectionSpec | undefined,
  commits: { ops: WriteOp[]; expected: (Doc | undefined)[] }[],
): Promise<CommitOutcome[]> {
  await client.query('BEGIN');
  try {
    const rows: Omit<ChangeRow, 'seq'>[] = [];
    const counts: (number | { error: unknown })[] = [];
    for (const c of commits) {
      await client.query('SAVEPOINT c');
      try {
        const mine = await writeOps(client, specs, c.ops, c.expected);
        await client.query('RELEASE SAVEPOINT c');
        rows.push(...mine);
        counts.push(mine.length);
      } catch (e) {
        await client.query('ROLLBACK TO SAVEPOINT c');
        counts.push({ error: mapPgError(e) });
      }
    }
    let next = 1;
    if (rows.length > 0) {
      const last = Number((await client.query<{ seq: string }>('UPDATE underlay_counter SET seq = seq + $1 RETURNING seq', [rows.length])).rows[0].seq);
      next = last - rows.length + 1;
      const seqs = rows.map((_, i) => next + i);
      await client.query(
        `INSERT INTO underlay_changes (seq, collection, id, type, doc, before)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::json[], $6::json[])`,
        [seqs, rows.map((c) => c.collection), rows.map((c) => c.id), rows.map((c) => c.type), rows.map((c) => (c.doc ? JSON.stringify(c.doc) : null)), rows.map((c) => (c.before ? JSON.stringify(c.before) : null))],
      );
      await client.query("SELECT pg_notify('underlay_changes', $1)", [String(last)]);
    }
    await client.query('COMMIT');
    return counts.map((n) => {
      if (typeof n !== 'number') return { ok: false, error: n.error };
      const seqs = Array.from({ length: n }, (_, i) => next + i);
      next += n;
      return { ok: true, seqs };
    });
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw mapPgError(e);
  }
}

/** One commit's ops inside the batch transaction; returns its change rows (a delete of nothing has none). */
async function writeOps(client: pg.ClientBase, specs: (name: string) => CollectionSpec | undefined, ops: WriteOp[], expected: (Doc | undefined)[]): Promise<Omit<ChangeRow, 'seq'>[]> {
  const rows: Omit<ChangeRow, 'seq'>[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    const id = op.type === 'put' ? op.doc.id : op.id;
    const before = (await client.query<{ doc: Doc }>('SELECT doc FROM underlay_docs WHERE collection = $1 AND id = $2 FOR UPDATE', [op.collection, id])).rows[0]?.doc;
    if (!sameDoc(before, expected[i])) throw new StaleWriteError(op.collection, id);
    if (op.type === 'put') {
      await client.query('INSERT INTO underlay_docs (collection, id, doc) VALUES ($1, $2, $3) ON CONFLICT (collection, id) DO UPDATE SET doc = EXCLUDED.doc', [op.collection, id, JSON.stringify(op.doc)]);
    } else if (before) {
      await client.query('DELETE FROM underlay_docs WHERE collection = $1 AND id = $2', [op.collection, id]);
    }
    await claimUniques(client, specs(op.collection), op, id);
    if (op.type === 'put' || before) rows.push({ collection: op.collection, id, type: op.type, doc: op.type === 'put' ? op.doc : null, before: before ?? null });
  }
  return rows;
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

/** Documents compare by content (key order aside): what the replica saw against what the database holds. */
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
