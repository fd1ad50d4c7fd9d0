import type pg from 'pg';
import { SCHEMA_VERSION } from '../migrations.js';
import { WRITE_FUNCTION_SQL, WRITE_FUNCTION_V3_SQL, WRITE_FUNCTION_V4_SQL, WRITE_FUNCTION_V5_SQL } from './write-function.js';

/**
 * The PostgreSQL schema, as numbered migrations applied in order (never edit one that shipped: add the
 * next). Documents are whole JSON documents per collection (as in the file store); `uniques` holds every
 * unique-index value a document claims (its primary key refuses a second holder across replicas);
 * `changes` is the ordered log of committed writes other replicas replay (NOTIFY tells them to look);
 * `counter` hands out the change sequence numbers and, being one row, orders commits.
 */
export const SQL_MIGRATIONS: string[] = [
  // 1: the document store, unique values, change log and counter.
  `CREATE TABLE underlay_docs (collection text NOT NULL, id text NOT NULL, doc json NOT NULL, PRIMARY KEY (collection, id));
   CREATE TABLE underlay_uniques (collection text NOT NULL, field text NOT NULL, value text NOT NULL, id text NOT NULL, PRIMARY KEY (collection, field, value));
   CREATE INDEX underlay_uniques_by_doc ON underlay_uniques (collection, id);
   CREATE TABLE underlay_changes (seq bigint PRIMARY KEY, collection text NOT NULL, id text NOT NULL, type text NOT NULL, doc json, before json, at timestamptz NOT NULL DEFAULT now());
   CREATE TABLE underlay_counter (one boolean PRIMARY KEY DEFAULT true CHECK (one), seq bigint NOT NULL);
   INSERT INTO underlay_counter (seq) VALUES (0);`,
  // 2: one round trip per batch of commits (see write-function.ts).
  WRITE_FUNCTION_SQL,
  // 3: the change log stores no `before` document (nothing reads it), each commit's ops parsed once (see write-function.ts).
  WRITE_FUNCTION_V3_SQL,
  // 4: compare-and-set by version token, the batch parsed once and written set-based, lz4 TOAST (see write-function.ts).
  WRITE_FUNCTION_V4_SQL,
  // 5: the fast path's version check joins the versions its lock read, not the table again (see write-function.ts).
  WRITE_FUNCTION_V5_SQL,
];

/** Advisory lock key (any constant) held while migrations run, so replicas starting together migrate once. */
const MIGRATION_LOCK = 0x756e6472; // "undr"

/**
 * Applies the migrations this database lacks, under an advisory lock, each in its own transaction with
 * the version bump. Refuses a database a newer central migrated (schema or document version). Returns
 * the versions before and after.
 */
export async function migrateDatabase(client: pg.ClientBase): Promise<{ from: number; to: number }> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS underlay_schema (one boolean PRIMARY KEY DEFAULT true CHECK (one), version int NOT NULL, doc_version int NOT NULL)');
    const row = (await client.query<{ version: number; doc_version: number }>('SELECT version, doc_version FROM underlay_schema')).rows[0];
    const from = row?.version ?? 0;
    if (from > SQL_MIGRATIONS.length) throw new Error(`the database has schema version ${from}, newer than this central (${SQL_MIGRATIONS.length}); upgrade the central`);
    if (row && row.doc_version > SCHEMA_VERSION) throw new Error(`the database holds documents of version ${row.doc_version}, newer than this central (${SCHEMA_VERSION}); upgrade the central`);
    for (let v = from; v < SQL_MIGRATIONS.length; v++) {
      await client.query('BEGIN');
      try {
        await client.query(SQL_MIGRATIONS[v]);
        await client.query(
          'INSERT INTO underlay_schema (version, doc_version) VALUES ($1, $2) ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version, doc_version = EXCLUDED.doc_version',
          [v + 1, SCHEMA_VERSION],
        );
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK');
        throw e;
      }
    }
    return { from, to: SQL_MIGRATIONS.length };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}
