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
${claimUniquesSql('col', 'k', "op->>'t'", "op->'u'")}        IF op->>'t' = 'put' OR cur IS NOT NULL THEN
          ccols := array_append(ccols, col); cids := array_append(cids, k); ctypes := array_append(ctypes, op->>'t');
          cdocs := array_append(cdocs, CASE WHEN op->>'t' = 'put' THEN op->'doc' END); cbefores := array_append(cbefores, ${before});
        END IF;
      END LOOP;
      cols := cols || ccols; ids := ids || cids; types := types || ctypes; docs := docs || cdocs; befores := befores || cbefores;
      outcomes := array_append(outcomes, json_build_object('n', coalesce(array_length(ccols, 1), 0)));
${commitOutcomeHandlers('col')}  END LOOP;
${changeRowsSql('before', 'befores', 'b')}`;
}

/**
 * Migration 4: compare-and-set by version, and a batch written set-based.
 * - Every document carries a version token its writer chose (`underlay_docs.ver`, and each change row's
 *   `ver`, so replicas replaying the log know it): an op names the version it expects (`e`, NULL: no
 *   document) instead of carrying the whole document it saw; PostgreSQL compares two short strings.
 *   Documents stored before migration 4 take version '0'.
 * - `underlay_write(ops json, commits int)` takes the batch flat: one op per element,
 *   `{i: position, k: commit index, c, id, t: 'put'|'delete', d: document, v: new version (NULL for a
 *   delete), e: expected version, u: unique claims}`, in commit order, and parses it once
 *   (`json_to_recordset` into arrays). The fast path writes the whole batch with one statement per table
 *   inside one block (a single subtransaction for the batch, none per commit): lock the batch's rows in key
 *   order, check every op's expected version (the stored one for the first op on a key, the previous op's
 *   for the next), insert the created documents (ON CONFLICT DO NOTHING: a document another replica
 *   created meanwhile makes the batch stale), update and delete the others, replace the unique claims (no
 *   value any op of the batch claims may be held by a document outside it; each document then claims what
 *   its last op says: the replica checked its ops against each other in order) and insert the change rows.
 *   Anything refused in it (stale, a unique value held, NUL) undoes the block and the batch goes the slow
 *   way: each commit in its own block as migration 3 did, so one refused commit leaves the others and its
 *   reason is precise.
 * - lz4 TOAST compression for the document columns where the server has it.
 * Returns what migration 3's function returned.
 */
export const WRITE_FUNCTION_V4_SQL = `
ALTER TABLE underlay_docs ADD COLUMN ver text NOT NULL DEFAULT '0';
ALTER TABLE underlay_changes ADD COLUMN ver text;
DO $d$ BEGIN
  ALTER TABLE underlay_docs ALTER COLUMN doc SET COMPRESSION lz4;
  ALTER TABLE underlay_changes ALTER COLUMN doc SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN NULL;
END $d$;
DROP FUNCTION underlay_write(json);
DROP FUNCTION underlay_same_doc(json, json);

CREATE FUNCTION underlay_write(ops json, commits int) RETURNS json LANGUAGE plpgsql AS $f$
DECLARE
  fus json[];
  claim record;
  fcs text[]; fids text[]; fe0s text[]; fts text[]; fds json[]; fvs text[];
  ois int[]; oks int[]; ocs text[]; oids text[]; ots text[]; ods json[]; ovs text[]; oes text[]; ous json[];
  n int := 0;
  got int;
  want int;
  total int := 0;
  last bigint;
  outcomes json[] := '{}';
  -- the slow way
  elems json[];
  eks int[];
  j int;
  kk int;
  op record;
  cur text;
  found_row boolean;
  bad record;
  claimed int;
  m text;
  d text;
  cols text[] := '{}'; ids text[] := '{}'; types text[] := '{}'; docs json[] := '{}'; vers text[] := '{}';
  ccols text[]; cids text[]; ctypes text[]; cdocs json[]; cvers text[];
BEGIN
  BEGIN
    -- one pass, no sort: the arrays stay aligned, and every statement below orders by the op's position i
    SELECT array_agg(x.i), array_agg(x.k), array_agg(x.c), array_agg(x.id), array_agg(x.t), array_agg(x.d), array_agg(x.v), array_agg(x.e), array_agg(x.u)
      INTO ois, oks, ocs, oids, ots, ods, ovs, oes, ous
      FROM json_to_recordset(ops) AS x(i int, k int, c text, id text, t text, d json, v text, e text, u json);
    n := coalesce(array_length(ois, 1), 0);
    PERFORM 1 FROM underlay_docs x WHERE (x.collection, x.id) IN (SELECT o.c, o.id FROM unnest(ocs, oids) AS o(c, id)) ORDER BY x.collection, x.id FOR UPDATE;
    IF EXISTS (
      SELECT 1 FROM (
        SELECT o.e, CASE WHEN row_number() OVER w = 1 THEN x.ver ELSE lag(o.v) OVER w END AS prev
          FROM unnest(ois, ocs, oids, ovs, oes) AS o(i, c, id, v, e) LEFT JOIN underlay_docs x ON x.collection = o.c AND x.id = o.id
          WINDOW w AS (PARTITION BY o.c, o.id ORDER BY o.i)
      ) s WHERE s.e IS DISTINCT FROM s.prev
    ) THEN
      RAISE EXCEPTION USING ERRCODE = 'UL001';
    END IF;
    -- each key's first expected version and last op
    SELECT array_agg(f.c), array_agg(f.id), array_agg(f.e0), array_agg(f.t), array_agg(f.d), array_agg(f.v)
      INTO fcs, fids, fe0s, fts, fds, fvs
      FROM (SELECT DISTINCT ON (o.c, o.id) o.c, o.id, first_value(o.e) OVER (PARTITION BY o.c, o.id ORDER BY o.i) AS e0, o.t, o.d, o.v
              FROM unnest(ois, ocs, oids, ots, ods, ovs, oes) AS o(i, c, id, t, d, v, e)
              ORDER BY o.c, o.id, o.i DESC) f;
    SELECT count(*) INTO want FROM unnest(fe0s, fts) AS f(e0, t) WHERE f.e0 IS NULL AND f.t = 'put';
    IF want > 0 THEN
      INSERT INTO underlay_docs (collection, id, doc, ver)
        SELECT f.c, f.id, f.d, f.v FROM unnest(fcs, fids, fe0s, fts, fds, fvs) AS f(c, id, e0, t, d, v) WHERE f.e0 IS NULL AND f.t = 'put'
        ON CONFLICT (collection, id) DO NOTHING;
      GET DIAGNOSTICS got = ROW_COUNT;
      IF got < want THEN RAISE EXCEPTION USING ERRCODE = 'UL001'; END IF;
    END IF;
    UPDATE underlay_docs x SET doc = f.d, ver = f.v FROM unnest(fcs, fids, fe0s, fts, fds, fvs) AS f(c, id, e0, t, d, v)
      WHERE f.e0 IS NOT NULL AND f.t = 'put' AND x.collection = f.c AND x.id = f.id;
    IF 'delete' = ANY (fts) THEN
      DELETE FROM underlay_docs x USING unnest(fcs, fids, fe0s, fts) AS f(c, id, e0, t) WHERE f.e0 IS NOT NULL AND f.t = 'delete' AND x.collection = f.c AND x.id = f.id;
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(ous) AS u WHERE u IS NOT NULL) THEN
      -- the batch's documents release what they held and claim what their last op says; a value an earlier op
      -- of the batch claims may not be held by another document either (this replica checked its ops against each
      -- other in order, not against documents only the database knows)
      DELETE FROM underlay_uniques x USING unnest(ocs, oids, ous) AS o(c, id, u) WHERE o.u IS NOT NULL AND x.collection = o.c AND x.id = o.id;
      SELECT array_agg(l.c), array_agg(l.id), array_agg(l.u) INTO fcs, fids, fus
        FROM (SELECT DISTINCT ON (o.c, o.id) o.c, o.id, o.t, o.u FROM unnest(ois, ocs, oids, ots, ous) AS o(i, c, id, t, u)
                WHERE o.u IS NOT NULL ORDER BY o.c, o.id, o.i DESC) l
        WHERE l.t = 'put';
      SELECT count(*) INTO want FROM unnest(fus) AS u, json_array_elements(u) AS e(p);
      INSERT INTO underlay_uniques (collection, field, value, id)
        SELECT l.c, e.p->>0, e.p->>1, l.id FROM unnest(fcs, fids, fus) AS l(c, id, u), json_array_elements(l.u) AS e(p)
        ON CONFLICT DO NOTHING;
      GET DIAGNOSTICS got = ROW_COUNT;
      IF got < want THEN RAISE EXCEPTION USING ERRCODE = 'UL002'; END IF;
      FOR claim IN
        SELECT o.c, o.id, e.p->>0 AS f, e.p->>1 AS v
          FROM (SELECT o.c, o.id, o.t, o.u, o.i < max(o.i) OVER (PARTITION BY o.c, o.id) AS earlier FROM unnest(ois, ocs, oids, ots, ous) AS o(i, c, id, t, u) WHERE o.u IS NOT NULL) o,
               json_array_elements(o.u) AS e(p)
          WHERE o.earlier AND o.t = 'put'
      LOOP
        -- one primary-key probe per claim (a join here was planned as a scan of the table per claim)
        PERFORM 1 FROM underlay_uniques x WHERE x.collection = claim.c AND x.field = claim.f AND x.value = claim.v AND x.id <> claim.id;
        IF FOUND THEN RAISE EXCEPTION USING ERRCODE = 'UL002'; END IF;
      END LOOP;
    END IF;
    SELECT count(*) INTO total FROM unnest(ots, oes) AS o(t, e) WHERE o.t = 'put' OR o.e IS NOT NULL;
    IF total > 0 THEN
      UPDATE underlay_counter SET seq = seq + total RETURNING seq INTO last;
      INSERT INTO underlay_changes (seq, collection, id, type, doc, ver)
        SELECT last - total + row_number() OVER (ORDER BY o.i), o.c, o.id, o.t, o.d, o.v
          FROM unnest(ois, ocs, oids, ots, ods, ovs, oes) AS o(i, c, id, t, d, v, e) WHERE o.t = 'put' OR o.e IS NOT NULL;
      PERFORM pg_notify('underlay_changes', last::text);
    END IF;
    SELECT array_agg(json_build_object('n', coalesce(l.n, 0)) ORDER BY g.k) INTO outcomes
      FROM generate_series(0, commits - 1) AS g(k)
      LEFT JOIN (SELECT o.k, count(*) AS n FROM unnest(oks, ots, oes) AS o(k, t, e) WHERE o.t = 'put' OR o.e IS NOT NULL GROUP BY o.k) l ON l.k = g.k;
    RETURN json_build_object('last', last, 'outcomes', array_to_json(outcomes));
  EXCEPTION
    WHEN SQLSTATE 'UL001' OR SQLSTATE 'UL002' OR untranslatable_character OR character_not_in_repertoire THEN
      NULL; -- the slow way below
  END;

  elems := ARRAY(SELECT value FROM json_array_elements(ops));
  eks := ARRAY(SELECT (value->>'k')::int FROM json_array_elements(ops));
  n := coalesce(array_length(elems, 1), 0);
  outcomes := '{}';
  total := 0;
  j := 1;
  FOR kk IN 0 .. commits - 1 LOOP
    ccols := '{}'; cids := '{}'; ctypes := '{}'; cdocs := '{}'; cvers := '{}';
    BEGIN
      WHILE j <= n AND eks[j] = kk LOOP
        SELECT * INTO op FROM json_to_record(elems[j]) AS x(c text, id text, t text, d json, v text, e text, u json);
        j := j + 1;
        cur := NULL;
        SELECT x.ver INTO cur FROM underlay_docs x WHERE x.collection = op.c AND x.id = op.id FOR UPDATE;
        found_row := FOUND;
        IF (found_row AND op.e IS DISTINCT FROM cur) OR (NOT found_row AND op.e IS NOT NULL) THEN
          RAISE EXCEPTION USING ERRCODE = 'UL001', MESSAGE = op.c, DETAIL = op.id;
        END IF;
        IF op.t = 'put' THEN
          INSERT INTO underlay_docs (collection, id, doc, ver) VALUES (op.c, op.id, op.d, op.v)
            ON CONFLICT (collection, id) DO UPDATE SET doc = EXCLUDED.doc, ver = EXCLUDED.ver;
        ELSIF found_row THEN
          DELETE FROM underlay_docs WHERE collection = op.c AND id = op.id;
        END IF;
${claimUniquesSql('op.c', 'op.id', 'op.t', 'op.u')}        IF op.t = 'put' OR found_row THEN
          ccols := array_append(ccols, op.c); cids := array_append(cids, op.id); ctypes := array_append(ctypes, op.t);
          cdocs := array_append(cdocs, CASE WHEN op.t = 'put' THEN op.d END); cvers := array_append(cvers, op.v);
        END IF;
      END LOOP;
      cols := cols || ccols; ids := ids || cids; types := types || ctypes; docs := docs || cdocs; vers := vers || cvers;
      outcomes := array_append(outcomes, json_build_object('n', coalesce(array_length(ccols, 1), 0)));
${commitOutcomeHandlers('op.c')}    WHILE j <= n AND eks[j] = kk LOOP j := j + 1; END LOOP; -- the rest of a refused commit
  END LOOP;
${changeRowsSql('ver', 'vers', 'v')}`;

/**
 * A commit's unique claims in `underlay_uniques` (what the document held is released first), raising
 * UL002 with the first value another document holds; the SQL expressions for the op's collection, id,
 * type and claims are given. Shared by migration 2's function (its text unchanged) and migration 4's slow way.
 */
function claimUniquesSql(c: string, id: string, t: string, u: string): string {
  return `        IF json_typeof(${u}) = 'array' THEN
          DELETE FROM underlay_uniques WHERE collection = ${c} AND id = ${id};
          IF ${t} = 'put' AND json_array_length(${u}) > 0 THEN
            INSERT INTO underlay_uniques (collection, field, value, id)
              SELECT ${c}, u->>0, u->>1, ${id} FROM json_array_elements(${u}) AS t(u)
              ON CONFLICT DO NOTHING;
            GET DIAGNOSTICS claimed = ROW_COUNT;
            IF claimed < json_array_length(${u}) THEN
              SELECT u->>0 AS field, u->>1 AS value INTO bad FROM json_array_elements(${u}) WITH ORDINALITY AS t(u, i)
                WHERE NOT EXISTS (SELECT 1 FROM underlay_uniques x WHERE x.collection = ${c} AND x.field = u->>0 AND x.value = u->>1 AND x.id = ${id})
                ORDER BY i LIMIT 1;
              IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'UL002', MESSAGE = bad.field, DETAIL = bad.value;
              END IF;
            END IF;
          END IF;
        END IF;
`;
}

/** The handlers that turn a refused commit's error into its outcome; `c` is the SQL expression of the op's collection. */
function commitOutcomeHandlers(c: string): string {
  return `    EXCEPTION
      WHEN SQLSTATE 'UL001' THEN
        GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
        outcomes := array_append(outcomes, json_build_object('stale', json_build_array(m, d)));
      WHEN SQLSTATE 'UL002' THEN
        GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
        outcomes := array_append(outcomes, json_build_object('unique', json_build_array(${c}, m, d)));
      WHEN untranslatable_character OR character_not_in_repertoire THEN
        outcomes := array_append(outcomes, json_build_object('nul', true));
    END;
`;
}

/** The end of `underlay_write`: the batch's change rows numbered from the counter, one NOTIFY, the answer; `col` is the change log's extra column, filled from the array `arr`. */
function changeRowsSql(col: string, arr: string, a: string): string {
  return `  total := coalesce(array_length(cols, 1), 0);
  IF total > 0 THEN
    UPDATE underlay_counter SET seq = seq + total RETURNING seq INTO last;
    INSERT INTO underlay_changes (seq, collection, id, type, doc, ${col})
      SELECT last - total + t.i, t.c, t.k, t.ty, t.d, t.${a} FROM unnest(cols, ids, types, docs, ${arr}) WITH ORDINALITY AS t(c, k, ty, d, ${a}, i);
    PERFORM pg_notify('underlay_changes', last::text);
  END IF;
  RETURN json_build_object('last', last, 'outcomes', array_to_json(outcomes));
END $f$;
`;
}

/**
 * Migration 5: the fast path reads each document's stored version once. Migration 4 locked the batch's
 * rows (`FOR UPDATE`) and then joined the ops with `underlay_docs` again for the version check; with a
 * batch of hundreds of ops PostgreSQL planned that join as a hash join over a sequential scan of the whole
 * table (every document, once per batch: a cost growing with the inventory). Now the locking statement
 * returns the versions it locked and the check joins the ops with those (two arrays, no table).
 * Everything else is migration 4's function, text for text.
 */
export const WRITE_FUNCTION_V5_SQL = WRITE_FUNCTION_V4_SQL.slice(WRITE_FUNCTION_V4_SQL.indexOf('CREATE FUNCTION underlay_write'))
  .replace('CREATE FUNCTION underlay_write', 'CREATE OR REPLACE FUNCTION underlay_write')
  .replace('  fus json[];\n', '  fus json[];\n  lcs text[]; lids text[]; lvers text[];\n')
  .replace(
    'PERFORM 1 FROM underlay_docs x WHERE (x.collection, x.id) IN (SELECT o.c, o.id FROM unnest(ocs, oids) AS o(c, id)) ORDER BY x.collection, x.id FOR UPDATE;',
    'SELECT array_agg(l.collection), array_agg(l.id), array_agg(l.ver) INTO lcs, lids, lvers\n' +
      '      FROM (SELECT x.collection, x.id, x.ver FROM underlay_docs x WHERE (x.collection, x.id) IN (SELECT o.c, o.id FROM unnest(ocs, oids) AS o(c, id)) ORDER BY x.collection, x.id FOR UPDATE) l;',
  )
  .replace(
    'LEFT JOIN underlay_docs x ON x.collection = o.c AND x.id = o.id\n          WINDOW w',
    'LEFT JOIN unnest(lcs, lids, lvers) AS x(collection, id, ver) ON x.collection = o.c AND x.id = o.id\n          WINDOW w',
  );
