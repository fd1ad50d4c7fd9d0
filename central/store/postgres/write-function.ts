/**
 * `underlay_write(batch json)`: a batch of commits written by one statement, so a commit costs one round
 * trip to PostgreSQL (the statement is its own transaction; its COMMIT is synchronous). Installed by
 * schema migration 2; write-txn.ts builds the batch and reads the outcomes.
 *
 * The batch is a JSON array of commits, each an array of ops `{c, id, t: 'put'|'delete', doc?, exp?, u?}`:
 * `exp` is the document the replica saw (absent: none), `u` the `[field, value]` pairs of the collection's
 * unique indexes the document claims (absent: the collection has no unique index). Each commit runs in
 * its own block (a subtransaction), so a refused commit leaves the others:
 * - another version is stored than `exp` (another replica wrote first): `{"stale": [collection, id]}`;
 * - a unique value another document holds: `{"unique": [collection, field, value]}`;
 * - a NUL character in a text value: `{"nul": true}`;
 * - written: `{"n": change rows}` (a delete of nothing writes none).
 * The change rows of the whole batch take their sequence numbers from the one-row counter last (its row
 * lock orders transactions, so the change log is in commit order without gaps), then one NOTIFY.
 * Returns `{"last": last sequence number or null, "outcomes": [...]}`.
 *
 * Documents are compared by text first (a replica's copy serialises to the stored bytes), and only when
 * the text differs by value (jsonb equality; key order aside).
 */
export const WRITE_FUNCTION_SQL = writeFunctionSql('cur');

/**
 * Migration 3: the same function, with two costs removed.
 * - It stores no `before` in the change log. Nothing reads it since the replicas take what a row replaced
 *   from their own memory (PostgresStore.catchUp); it was a second full copy of every document written,
 *   in the table and the WAL. The column stays (NULL).
 * - Each commit's ops are parsed once (`json_to_recordset`). Migration 2 read every field with `op->…`,
 *   and on the `json` type each such operator parses the whole op again (the op holds `doc` and `exp`,
 *   two whole documents): about ten parses of each op.
 */
export const WRITE_FUNCTION_V3_SQL = writeFunctionSql('NULL::json')
  .replace('  op json;', '  op record;')
  .replace('FOR op IN SELECT value FROM json_array_elements(c) LOOP', 'FOR op IN SELECT * FROM json_to_recordset(c) AS x(c text, id text, t text, doc json, exp json, u json) LOOP')
  .replaceAll("op->>'c'", 'op.c')
  .replaceAll("op->>'id'", 'op.id')
  .replaceAll("op->>'t'", 'op.t')
  .replaceAll("op->'doc'", 'op.doc')
  .replaceAll("op->'exp'", 'op.exp')
  .replaceAll("op->'u'", 'op.u');

/** `underlay_write` as described above; `before` is what each change row stores as the document it replaced. */
function writeFunctionSql(before: 'cur' | 'NULL::json'): string {
  return `
CREATE OR REPLACE FUNCTION underlay_same_doc(a json, b json) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
  IF a IS NULL OR b IS NULL THEN RETURN a IS NULL AND b IS NULL; END IF;
  IF a::text = b::text THEN RETURN true; END IF;
  BEGIN
    RETURN a::jsonb = b::jsonb;
  EXCEPTION WHEN OTHERS THEN
    RETURN false;
  END;
END $f$;

CREATE OR REPLACE FUNCTION underlay_write(batch json) RETURNS json LANGUAGE plpgsql AS $f$
DECLARE
  c json;
  op json;
  col text;
  k text;
  cur json;
  outcomes json[] := '{}';
  cols text[] := '{}'; ids text[] := '{}'; types text[] := '{}'; docs json[] := '{}'; befores json[] := '{}';
  ccols text[]; cids text[]; ctypes text[]; cdocs json[]; cbefores json[];
  claimed int;
  bad record;
  total int;
  last bigint;
  m text;
  d text;
BEGIN
  FOR c IN SELECT value FROM json_array_elements(batch) LOOP
    ccols := '{}'; cids := '{}'; ctypes := '{}'; cdocs := '{}'; cbefores := '{}';
    BEGIN
      FOR op IN SELECT value FROM json_array_elements(c) LOOP
        col := op->>'c';
        k := op->>'id';
        cur := NULL;
        SELECT x.doc INTO cur FROM underlay_docs x WHERE x.collection = col AND x.id = k FOR UPDATE;
        IF NOT underlay_same_doc(cur, CASE WHEN json_typeof(op->'exp') = 'object' THEN op->'exp' END) THEN
          RAISE EXCEPTION USING ERRCODE = 'UL001', MESSAGE = col, DETAIL = k;
        END IF;
        IF op->>'t' = 'put' THEN
          INSERT INTO underlay_docs (collection, id, doc) VALUES (col, k, op->'doc')
            ON CONFLICT (collection, id) DO UPDATE SET doc = EXCLUDED.doc;
        ELSIF cur IS NOT NULL THEN
          DELETE FROM underlay_docs WHERE collection = col AND id = k;
        END IF;
        IF json_typeof(op->'u') = 'array' THEN
          DELETE FROM underlay_uniques WHERE collection = col AND id = k;
          IF op->>'t' = 'put' AND json_array_length(op->'u') > 0 THEN
            INSERT INTO underlay_uniques (collection, field, value, id)
              SELECT col, u->>0, u->>1, k FROM json_array_elements(op->'u') AS t(u)
              ON CONFLICT DO NOTHING;
            GET DIAGNOSTICS claimed = ROW_COUNT;
            IF claimed < json_array_length(op->'u') THEN
              SELECT u->>0 AS field, u->>1 AS value INTO bad FROM json_array_elements(op->'u') WITH ORDINALITY AS t(u, i)
                WHERE NOT EXISTS (SELECT 1 FROM underlay_uniques x WHERE x.collection = col AND x.field = u->>0 AND x.value = u->>1 AND x.id = k)
                ORDER BY i LIMIT 1;
              IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'UL002', MESSAGE = bad.field, DETAIL = bad.value;
              END IF;
            END IF;
          END IF;
        END IF;
        IF op->>'t' = 'put' OR cur IS NOT NULL THEN
          ccols := array_append(ccols, col); cids := array_append(cids, k); ctypes := array_append(ctypes, op->>'t');
          cdocs := array_append(cdocs, CASE WHEN op->>'t' = 'put' THEN op->'doc' END); cbefores := array_append(cbefores, ${before});
        END IF;
      END LOOP;
      cols := cols || ccols; ids := ids || cids; types := types || ctypes; docs := docs || cdocs; befores := befores || cbefores;
      outcomes := array_append(outcomes, json_build_object('n', coalesce(array_length(ccols, 1), 0)));
    EXCEPTION
      WHEN SQLSTATE 'UL001' THEN
        GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
        outcomes := array_append(outcomes, json_build_object('stale', json_build_array(m, d)));
      WHEN SQLSTATE 'UL002' THEN
        GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
        outcomes := array_append(outcomes, json_build_object('unique', json_build_array(col, m, d)));
      WHEN untranslatable_character OR character_not_in_repertoire THEN
        outcomes := array_append(outcomes, json_build_object('nul', true));
    END;
  END LOOP;
  total := coalesce(array_length(cols, 1), 0);
  IF total > 0 THEN
    UPDATE underlay_counter SET seq = seq + total RETURNING seq INTO last;
    INSERT INTO underlay_changes (seq, collection, id, type, doc, before)
      SELECT last - total + t.i, t.c, t.k, t.ty, t.d, t.b FROM unnest(cols, ids, types, docs, befores) WITH ORDINALITY AS t(c, k, ty, d, b, i);
    PERFORM pg_notify('underlay_changes', last::text);
  END IF;
  RETURN json_build_object('last', last, 'outcomes', array_to_json(outcomes));
END $f$;
`;
}
