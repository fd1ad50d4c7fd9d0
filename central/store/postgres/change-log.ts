import type pg from 'pg';
import type { MemoryCollection } from '../memory-collection.js';
import type { Doc } from '../types.js';
import type { ChangeRow } from './write-txn.js';

/** Every document and the change-log position they are at. */
export interface Snapshot {
  seq: number;
  docs: { collection: string; doc: Doc; ver: string }[];
}

/** Change-log rows deleted per statement, so no transaction runs long. */
const PRUNE_SLICE = 10_000;

/**
 * Deletes the change-log rows older than `retentionMs`, always keeping the newest one: a replica that
 * lacks pruned rows then sees a gap in the sequence and reloads (see PostgresStore's catch-up). Returns
 * the rows deleted. Run it on one replica at a time (store.exclusive).
 */
export async function pruneChangeLog(db: pg.Pool | pg.ClientBase, retentionMs: number): Promise<number> {
  const boundary = Number(
    (
      await db.query<{ seq: string | null }>(
        `SELECT coalesce((SELECT seq FROM underlay_changes WHERE at >= now() - $1 * interval '1 millisecond' ORDER BY seq LIMIT 1), (SELECT max(seq) FROM underlay_changes)) AS seq`,
        [retentionMs],
      )
    ).rows[0].seq ?? 0,
  );
  let deleted = 0;
  for (;;) {
    const res = await db.query('DELETE FROM underlay_changes WHERE seq IN (SELECT seq FROM underlay_changes WHERE seq < $1 ORDER BY seq LIMIT $2)', [boundary, PRUNE_SLICE]);
    deleted += res.rowCount ?? 0;
    if ((res.rowCount ?? 0) < PRUNE_SLICE) return deleted;
  }
}

/** Every document and the change-log position they are at, read in one snapshot (on an idle client). */
export async function readSnapshot(client: pg.ClientBase): Promise<Snapshot> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const seq = Number((await client.query<{ seq: string }>('SELECT seq FROM underlay_counter')).rows[0].seq);
    const docs = (await client.query<{ collection: string; doc: Doc; ver: string }>('SELECT collection, doc, ver FROM underlay_docs')).rows;
    return { seq, docs };
  } finally {
    await client.query('COMMIT');
  }
}

/**
 * The changes that bring the collections in memory to a snapshot, as change rows numbered up to the
 * snapshot's position (deletes first), so announcing them leaves the change index where the other
 * replicas' is.
 */
export function differences(collections: Map<string, MemoryCollection>, snapshot: Snapshot): ChangeRow[] {
  const seen = new Set<string>();
  const puts: Omit<ChangeRow, 'seq'>[] = [];
  const deletes: Omit<ChangeRow, 'seq'>[] = [];
  for (const { collection, doc, ver } of snapshot.docs) {
    seen.add(`${collection}\0${doc.id}`);
    const cur = collections.get(collection)?.get(doc.id);
    if (!cur || JSON.stringify(cur) !== JSON.stringify(doc)) puts.push({ collection, id: doc.id, type: 'put', doc, before: cur ?? null, ver });
  }
  for (const [name, c] of collections) {
    for (const doc of c.docs.values()) if (!seen.has(`${name}\0${doc.id}`)) deletes.push({ collection: name, id: doc.id, type: 'delete', doc: null, before: doc, ver: null });
  }
  const all = [...deletes, ...puts];
  return all.map((r, i) => ({ ...r, seq: snapshot.seq - all.length + 1 + i }));
}
