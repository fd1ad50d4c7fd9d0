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
  /** The version token the write gave the document (null for a delete). */
  ver: string | null;
}

/** What became of one commit of a batch: its change rows' sequence numbers, or why it was refused. */
export type CommitOutcome = { ok: true; seqs: number[] } | { ok: false; error: unknown };

/** One op as `underlay_write` takes it (write-function.ts, migration 4). */
interface WireOp {
  i: number;
  k: number;
  c: string;
  id: string;
  t: 'put' | 'delete';
  d?: Doc;
  v?: string;
  e?: string;
  u?: [string, string][];
}

/**
 * One commit to write: its ops, the version each op expects (undefined: no document), the version each put
 * gives and, when known, the document each op expects (the one at that version: its unique claims are the
 * ones the database holds for it, so a put claiming the same values leaves `underlay_uniques` alone).
 */
export interface WriteCommit {
  ops: WriteOp[];
  exp: (string | undefined)[];
  vers: (string | undefined)[];
  expected?: (Doc | undefined)[];
}

/** What `underlay_write` answers for one commit. */
type WireOutcome = { n: number } | { stale: [string, string] } | { unique: [string, string, string] } | { nul: true };

/**
 * Writes a batch of commits in one statement, one round trip (group commit: one synchronous COMMIT for
 * all of them; acknowledged means committed); one refused commit leaves the others. Compare-and-set by
 * version: each op names the version of the document this replica saw (`exp`); when the database holds
 * another (another replica wrote it first) that commit is refused with StaleWriteError. Unique values are
 * claimed in `underlay_uniques`, whose primary key refuses a value another document holds, on any
 * replica. See write-function.ts for the server side.
 * Throws only when the statement itself failed (then nothing of the batch was written).
 */
export async function writeBatch(client: pg.ClientBase, specs: (name: string) => CollectionSpec | undefined, commits: WriteCommit[]): Promise<CommitOutcome[]> {
  const wire: WireOp[] = [];
  commits.forEach((c, k) => c.ops.forEach((op, j) => wire.push(wireOp(specs(op.collection), op, wire.length, k, c.exp[j], c.vers[j], c.expected?.[j]))));
  let answer: { last: string | number | null; outcomes: WireOutcome[] };
  try {
    answer = (await client.query<{ r: typeof answer }>('SELECT underlay_write($1::json, $2::int) AS r', [JSON.stringify(wire), commits.length])).rows[0].r;
  } catch (e) {
    throw mapPgError(e);
  }
  const total = answer.outcomes.reduce((n, o) => n + ('n' in o ? o.n : 0), 0);
  let next = answer.last === null ? 1 : Number(answer.last) - total + 1;
  return answer.outcomes.map((o): CommitOutcome => {
    if ('n' in o) {
      const seqs = Array.from({ length: o.n }, (_, i) => next + i);
      next += o.n;
      return { ok: true, seqs };
    }
    if ('stale' in o) return { ok: false, error: new StaleWriteError(o.stale[0], o.stale[1]) };
    if ('unique' in o) return { ok: false, error: new UniqueConflictError(o.unique[0], o.unique[1], o.unique[2]) };
    return { ok: false, error: nulError() };
  });
}

/**
 * One op on the wire. `u` (the unique claims) is left out when the op does not change them: a put whose
 * expected document claims the same values in the same order (the compare-and-set makes sure the database
 * holds that document, hence those claims), so the database neither deletes nor inserts them again (an
 * agent's document, rewritten by every task created for it, kept its certificate fingerprint's claim that way).
 */
function wireOp(spec: CollectionSpec | undefined, op: WriteOp, i: number, k: number, expected: string | undefined, ver: string | undefined, expectedDoc: Doc | undefined): WireOp {
  const out: WireOp = op.type === 'put' ? { i, k, c: op.collection, id: op.doc.id, t: 'put', d: op.doc, v: ver } : { i, k, c: op.collection, id: op.id, t: 'delete' };
  if (expected !== undefined) out.e = expected;
  if (spec && spec.unique.length > 0) {
    if (op.type === 'delete') out.u = [];
    else {
      const claims = uniqueClaims(spec, op.doc);
      if (expected === undefined || expectedDoc === undefined || !sameClaims(claims, uniqueClaims(spec, expectedDoc))) out.u = claims;
    }
  }
  return out;
}

const uniqueClaims = (spec: CollectionSpec, doc: Doc): [string, string][] => spec.unique.flatMap((u) => u.values(doc).map((v): [string, string] => [u.field, v]));
const sameClaims = (a: [string, string][], b: [string, string][]) => a.length === b.length && a.every((x, i) => x[0] === b[i][0] && x[1] === b[i][1]);

const nulError = () => new InvalidError('a value contains a character the database cannot store (NUL)', [{ path: '', message: 'NUL character' }]);

/** PostgreSQL refuses NUL characters in text and jsonb: that is the input's fault, not the database's. */
function mapPgError(e: unknown): unknown {
  const code = (e as { code?: string }).code;
  if (code === '22P05' || code === '22021') return nulError();
  return e;
}
