import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidError } from '../../../shared/errors/domain-errors.js';
import { postgresReady, TestPostgres } from '../../../test/support/postgres.js';
import type { Change } from '../change-feed.js';
import { retryStale, StaleWriteError } from '../stale-write.js';
import { CONFORMANCE_SPECS } from '../store-conformance.test-support.js';
import { UniqueConflictError, type Doc } from '../types.js';
import { PostgresStore } from './postgres-store.js';
import { SCHEMA_VERSION } from '../migrations.js';
import { SQL_MIGRATIONS } from './schema.js';

const ready = postgresReady('PostgresStore replicas');
let cluster: TestPostgres;
beforeAll(async () => {
  if (ready) cluster = await TestPostgres.start();
});
afterAll(() => cluster?.stop());

const open = (url: string) => PostgresStore.open({ url, collections: CONFORMANCE_SPECS });
const two = async () => {
  const url = await cluster.createDatabase();
  const [a, b] = await Promise.all([open(url), open(url)]); // both migrate at once: the advisory lock makes it one migration
  return { url, a, b };
};
const until = async (cond: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe.skipIf(!ready)('PostgresStore: two replicas on one database', () => {
  it('a write through one replica is read and announced on the other, in the same order and at the same index', async () => {
    const { a, b } = await two();
    const seenB: Change[] = [];
    b.changes.on((c) => seenB.push(c));
    await a.put('things', { id: '1', name: 'one' });
    await b.put('things', { id: '2', name: 'two' });
    await until(() => a.get('things', '2') !== undefined); // a delete of what A has not seen yet would be refused as stale
    await a.commit([{ type: 'put', collection: 'things', doc: { id: '1', name: 'uno' } }, { type: 'delete', collection: 'things', id: '2' }]);
    await until(() => seenB.length === 4 && a.changes.index === b.changes.index && a.changes.index === 4);
    expect(seenB.map((c) => `${c.type} ${c.id} ${(c.doc as Doc | undefined)?.name ?? ''}`)).toEqual(['put 1 one', 'put 2 two', 'put 1 uno', 'delete 2 ']);
    expect(seenB[2].before).toEqual({ id: '1', name: 'one' });
    // What a remote change replaced comes from the replica's memory (not read back from the change log).
    expect(seenB[0].before).toBeUndefined();
    expect(seenB[3].before).toEqual({ id: '2', name: 'two' });
    expect(seenB.map((c) => c.remote ?? false)).toEqual([true, false, true, true]); // made on the other replica, or here
    expect(b.get('things', '1')).toEqual({ id: '1', name: 'uno' });
    expect(b.findUnique('things', 'name', 'uno')?.id).toBe('1');
    expect(b.findUnique('things', 'name', 'one')).toBeUndefined();
    expect(a.list('things').items).toEqual(b.list('things').items);
    await Promise.all([a.close(), b.close()]);
  });

  it('read-modify-writes racing on both replicas: a lost race is refused (nothing written), and retried none is lost', async () => {
    const { a, b } = await two();
    await a.put('other', { id: 'counter', n: 0 });
    await until(() => b.get('other', 'counter') !== undefined);
    const bump = (s: PostgresStore) => retryStale(() => s.put('other', { ...s.get<Doc & { n: number }>('other', 'counter')!, n: s.get<Doc & { n: number }>('other', 'counter')!.n + 1 }), 50);
    let stale = 0;
    const racer = async (s: PostgresStore) => {
      for (let i = 0; i < 20; i++) {
        const cur = s.get<Doc & { n: number }>('other', 'counter')!;
        await s.put('other', { ...cur, n: cur.n + 1 }).catch((e: unknown) => {
          if (!(e instanceof StaleWriteError)) throw e;
          stale++;
          return bump(s);
        });
      }
    };
    await Promise.all([racer(a), racer(b)]);
    await until(() => a.get<Doc & { n: number }>('other', 'counter')!.n === 40 && b.get<Doc & { n: number }>('other', 'counter')!.n === 40);
    expect(stale).toBeGreaterThan(0); // the race really happened
    await Promise.all([a.close(), b.close()]);
  });

  it('a unique value claimed on both replicas at once goes to exactly one document', async () => {
    const { a, b } = await two();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => [a.put('hosts', { id: `a${i}`, macs: [`aa:${i}`] }), b.put('hosts', { id: `b${i}`, macs: [`aa:${i}`] })]).flat(),
    );
    const won = results.filter((r) => r.status === 'fulfilled').length;
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(UniqueConflictError);
    expect(won).toBe(10);
    await until(() => a.count('hosts') === 10 && b.count('hosts') === 10);
    for (let i = 0; i < 10; i++) expect(a.findUnique('hosts', 'mac', `aa:${i}`)?.id).toBe(b.findUnique('hosts', 'mac', `aa:${i}`)?.id);
    await Promise.all([a.close(), b.close()]);
  });

  it('a background job runs on one replica at a time', async () => {
    const { a, b } = await two();
    let release!: () => void;
    const holding = a.exclusive('retention', () => new Promise<string>((r) => (release = () => r('a ran'))));
    await until(() => release !== undefined);
    await new Promise((r) => setTimeout(r, 50));
    await expect(b.exclusive('retention', () => 'b ran')).resolves.toBeUndefined();
    await expect(b.exclusive('other-job', () => 'b ran')).resolves.toBe('b ran');
    release();
    await expect(holding).resolves.toBe('a ran');
    await expect(b.exclusive('retention', () => 'b ran')).resolves.toBe('b ran');
    await Promise.all([a.close(), b.close()]);
  });

  it('hostile values: a NUL character is refused as invalid input, nothing is written, the store keeps working', async () => {
    const { a, b } = await two();
    const err = await a.put('things', { id: 'x', name: 'bad\u0000name' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidError);
    expect(a.get('things', 'x')).toBeUndefined();
    await a.put('things', { id: 'y', name: 'fine' });
    await until(() => b.get('things', 'y') !== undefined);
    expect(b.get('things', 'x')).toBeUndefined();
    await Promise.all([a.close(), b.close()]);
  });

  it('deep nesting and odd keys are stored as given and read back in the same bytes (key order kept) on the other replica', async () => {
    const { a, b } = await two();
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200; i++) deep = { d: deep };
    const doc = { id: 'x', name: 'odd', 'weird key \u2028"': ['\ud83d\ude00', null, 1e300], deep, z: 1, a: 2 };
    await a.put('things', doc);
    await until(() => b.get('things', 'x') !== undefined);
    expect(JSON.stringify(b.get('things', 'x'))).toBe(JSON.stringify(doc));
    await Promise.all([a.close(), b.close()]);
  });

  it('a durable commit costs one round trip to PostgreSQL (one statement, synchronous commit), a batch of concurrent commits one too', async () => {
    const { a, b } = await two();
    await a.put('things', { id: 'warm', name: 'warm' });
    const query = vi.spyOn((a as unknown as { writer: pg.Client }).writer, 'query'); // B's catch-up reads are B's business
    try {
      await a.put('things', { id: '1', name: 'one' });
      expect(query).toHaveBeenCalledTimes(1);
      query.mockClear();
      await Promise.all(Array.from({ length: 20 }, (_, i) => a.put('hosts', { id: `h${i}`, macs: [`m${i}`] })));
      expect(query.mock.calls.length).toBeLessThanOrEqual(2); // the first commit alone, then the 19 queued meanwhile together
    } finally {
      query.mockRestore();
    }
    await until(() => b.count('hosts') === 20 && b.get('things', '1') !== undefined);
    const c = new pg.Client({ connectionString: (a as unknown as { opts: { url: string } }).opts.url });
    await c.connect();
    expect((await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit).toBe('on');
    expect((await c.query('SELECT count(*)::int AS n, max(seq)::int AS last FROM underlay_changes')).rows[0]).toEqual({ n: 22, last: 22 });
    await c.end();
    await Promise.all([a.close(), b.close()]);
  });

  it('schema 3 and later: the change log stores no copy of what each row replaced (the other replica still announces it, from its memory)', async () => {
    const { url, a, b } = await two();
    const seenB: Change[] = [];
    b.changes.on((c) => seenB.push(c));
    await a.put('things', { id: '1', name: 'one' });
    await a.put('things', { id: '1', name: 'uno' });
    await a.delete('things', '1');
    await until(() => seenB.length === 3);
    expect(seenB.map((c) => c.before)).toEqual([undefined, { id: '1', name: 'one' }, { id: '1', name: 'uno' }]);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    expect((await c.query('SELECT version FROM underlay_schema')).rows[0].version).toBe(SQL_MIGRATIONS.length);
    expect((await c.query('SELECT count(*)::int AS n, count(before)::int AS befores FROM underlay_changes')).rows[0]).toEqual({ n: 3, befores: 0 });
    await c.end();
    await Promise.all([a.close(), b.close()]);
  });

  it('schema 4: an update names the version it expects, not the document it saw; the batch is parsed once', async () => {
    const { url, a, b } = await two();
    const big = 'x'.repeat(5000);
    await a.put('things', { id: '1', name: 'one', big });
    const query = vi.spyOn((a as unknown as { writer: pg.Client }).writer, 'query');
    try {
      await a.put('things', { id: '1', name: 'uno', big });
      const [sql, params] = query.mock.calls[0] as unknown as [string, [string, number]];
      expect(sql).toMatch(/underlay_write\(\$1::json, \$2::int\)/);
      expect(params[0].length).toBeLessThan(big.length + 200); // one document, not two
      const [op] = JSON.parse(params[0]) as { e?: string; v?: string }[];
      expect(typeof op.e).toBe('string');
      expect(op.v).not.toBe(op.e);
    } finally {
      query.mockRestore();
    }
    await until(() => b.get<Doc>('things', '1')?.name === 'uno');
    await b.put('things', { id: '1', name: 'eins', big }); // B names the version A gave it, learnt from the change log
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const fn = (await c.query("SELECT prosrc FROM pg_proc WHERE proname = 'underlay_write'")).rows.map((r: { prosrc: string }) => r.prosrc);
    expect(fn).toHaveLength(1); // migration 3's function is gone
    expect(fn[0].match(/json_to_recordset\(ops\)/g)).toHaveLength(1);
    const vers = (await c.query("SELECT d.ver, ch.ver AS logged FROM underlay_docs d, underlay_changes ch WHERE d.id = '1' AND ch.seq = (SELECT max(seq) FROM underlay_changes)")).rows[0];
    expect(vers.ver).toBe(vers.logged);
    await c.end();
    await Promise.all([a.close(), b.close()]);
  });

  it('schema 4: in one batch a stale commit is refused and the others are written, a document updated by two commits of the batch included', async () => {
    const { a, b } = await two();
    await a.put('things', { id: 's', name: 's0' });
    await a.put('things', { id: 't', name: 't0' });
    await until(() => b.get('things', 's') !== undefined && b.get('things', 't') !== undefined);
    (a as unknown as { listener: pg.Client }).listener.removeAllListeners('notification'); // A does not hear B's write before its batch
    await b.put('things', { id: 's', name: 's1' });
    const results = await Promise.allSettled([
      a.put('things', { id: 't', name: 't1' }), // alone first (the batch after it queues meanwhile)
      a.put('things', { id: 't', name: 't2' }),
      a.put('things', { id: 's', name: 's-stale' }),
      a.put('things', { id: 't', name: 't3' }),
      a.put('things', { id: 'u', name: 'u1' }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(StaleWriteError);
    expect(a.get<Doc>('things', 's')?.name).toBe('s1');
    await until(() => b.get<Doc>('things', 't')?.name === 't3' && b.get('things', 'u') !== undefined);
    expect(b.get<Doc>('things', 's')?.name).toBe('s1');
    await Promise.all([a.close(), b.close()]);
  });

  it('schema 4: a batch is written in one block, not a subtransaction per commit, a document with unique values written by several of its commits included', async () => {
    const { url, a } = await two();
    await a.put('things', { id: 'warm', name: 'warm' });
    await Promise.all([
      a.put('things', { id: 'warm', name: 'warm1' }), // alone first; the rest queue meanwhile and go as one batch
      a.put('things', { id: 'n', name: 'n1' }),
      a.put('things', { id: 'n', name: 'n2' }),
      a.put('hosts', { id: 'h', macs: ['m1'] }),
      a.put('things', { id: 'n', name: 'n3' }),
    ]);
    expect(a.findUnique('things', 'name', 'n3')?.id).toBe('n');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    // rows a subtransaction wrote carry its own transaction id: the slow way gives each commit one
    const xids = (await c.query("SELECT count(DISTINCT xmin::text)::int AS n FROM underlay_docs WHERE id IN ('n', 'h')")).rows[0].n;
    expect(xids).toBe(1);
    expect((await c.query("SELECT value FROM underlay_uniques WHERE id = 'n'")).rows).toEqual([{ value: 'n3' }]);
    await c.end();
    await a.close();
  });

  it('schema 4: a value an earlier commit of a batch claims, held by a document only the database knows, refuses that commit and the ones built on it', async () => {
    const { a, b } = await two();
    await a.put('things', { id: 'e', name: 'e0' });
    await until(() => b.get('things', 'e') !== undefined);
    (a as unknown as { listener: pg.Client }).listener.removeAllListeners('notification');
    await b.put('things', { id: 'd', name: 'x' }); // A does not know
    const results = await Promise.allSettled([
      a.put('other', { id: 'first' }),
      a.put('things', { id: 'e', name: 'x' }),
      a.put('things', { id: 'e', name: 'y' }), // releases x again: the batch's final state alone would not show the conflict
      a.put('other', { id: 'unrelated' }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(UniqueConflictError);
    expect(a.get<Doc>('things', 'e')?.name).toBe('e0');
    expect(a.findUnique('things', 'name', 'x')?.id).toBe('d');
    await until(() => b.get('other', 'unrelated') !== undefined);
    expect(b.get<Doc>('things', 'e')?.name).toBe('e0');
    await Promise.all([a.close(), b.close()]);
  });

  it('a put that keeps its unique values leaves their rows alone (no delete and insert per write); changed values still move, and still refuse a second holder', async () => {
    const { url, a, b } = await two();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const claims = async (id: string) => (await c.query<{ value: string; x: string }>('SELECT value, xmin::text AS x FROM underlay_uniques WHERE id = $1 ORDER BY value', [id])).rows;
    await a.put('hosts', { id: 'h', macs: ['m1', 'm2'], n: 0 });
    const before = await claims('h');
    await a.put('hosts', { id: 'h', macs: ['m1', 'm2'], n: 1 });
    await Promise.all([a.put('hosts', { id: 'h', macs: ['m1', 'm2'], n: 2 }), a.put('hosts', { id: 'h', macs: ['M1', 'm2'], n: 3 })]); // the same values (lower-cased), in one batch
    expect(await claims('h')).toEqual(before); // the same row versions: not rewritten
    await until(() => b.get<Doc>('hosts', 'h')?.n === 3);
    await expect(b.put('hosts', { id: 'g', macs: ['m2'] })).rejects.toBeInstanceOf(UniqueConflictError);
    await b.put('hosts', { id: 'h', macs: ['m3'], n: 4 }); // through the other replica: m1 and m2 released, m3 claimed
    expect((await claims('h')).map((r) => r.value)).toEqual(['m3']);
    await until(() => a.get<Doc>('hosts', 'h')?.n === 4);
    await a.put('hosts', { id: 'g', macs: ['m1'] });
    expect(b.findUnique('hosts', 'mac', 'm3')?.id).toBe('h');
    await c.end();
    await Promise.all([a.close(), b.close()]);
  });

  it('schema 4 on a database written at schema 3: its documents take version 0 and are updated, on both replicas', async () => {
    const url = await cluster.createDatabase();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('CREATE TABLE underlay_schema (one boolean PRIMARY KEY DEFAULT true CHECK (one), version int NOT NULL, doc_version int NOT NULL)');
    for (const sql of SQL_MIGRATIONS.slice(0, 3)) await c.query(sql);
    await c.query('INSERT INTO underlay_schema (version, doc_version) VALUES (3, $1)', [SCHEMA_VERSION]);
    await c.query(`SELECT underlay_write('[[{"c":"things","id":"old","t":"put","doc":{"id":"old","name":"old"},"u":[["name","old"]]}]]'::json)`);
    const [a, b] = await Promise.all([open(url), open(url)]);
    expect((await c.query("SELECT ver FROM underlay_docs WHERE id = 'old'")).rows[0].ver).toBe('0');
    await a.put('things', { id: 'old', name: 'renewed' });
    await until(() => b.get<Doc>('things', 'old')?.name === 'renewed');
    await b.delete('things', 'old');
    await until(() => a.get('things', 'old') === undefined);
    expect(a.findUnique('things', 'name', 'old')).toBeUndefined();
    await c.end();
    await Promise.all([a.close(), b.close()]);
  });

  it('the change log is pruned (newest row kept); a replica that missed pruned rows reloads and announces what changed, at the same index', async () => {
    const { url, a, b } = await two();
    for (let i = 1; i <= 3; i++) await a.put('things', { id: String(i), name: `n${i}` });
    await until(() => b.count('things') === 3);
    (b as unknown as { listener: pg.Client }).listener.removeAllListeners('notification'); // B hears nothing from now on
    await a.put('things', { id: '1', name: 'changed' });
    await a.delete('things', '2');
    await a.put('things', { id: '4', name: 'n2' }); // takes the unique value the deleted one held
    await new Promise((r) => setTimeout(r, 100));
    expect(b.get('things', '4')).toBeUndefined();
    expect(await a.exclusive('change-log-retention', () => a.pruneChanges(0))).toBe(5);
    const seen: Change[] = [];
    b.changes.on((c) => seen.push(c));
    await b.exclusive('any-job', () => undefined); // a job first replays what was committed: here from a snapshot
    expect(b.list('things').items).toEqual(a.list('things').items);
    expect(b.findUnique('things', 'name', 'n2')?.id).toBe('4');
    expect(seen.map((c) => `${c.type} ${c.id}`)).toEqual(['delete 2', 'put 1', 'put 4']);
    expect(seen[1].before).toEqual({ id: '1', name: 'n1' });
    expect(b.changes.index).toBe(a.changes.index);
    await b.put('things', { id: '5', name: 'after' }); // and it writes on top of it
    await until(() => a.get('things', '5') !== undefined);

    const c = await PostgresStore.open({ url, collections: CONFORMANCE_SPECS, changeRetentionMs: 0, pruneEveryMs: 50 });
    const pc = new pg.Client({ connectionString: url });
    await pc.connect();
    const rows = async () => (await pc.query('SELECT count(*)::int AS n FROM underlay_changes')).rows[0].n as number;
    await a.put('things', { id: '6', name: 'six' });
    await a.put('things', { id: '7', name: 'seven' });
    const t0 = Date.now();
    while ((await rows()) > 1 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(await rows()).toBe(1); // the job prunes by itself
    await pc.end();
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('replicas exchange unstored messages (never to the sender); after losing its connection a replica is told it may have missed some, and they flow again', async () => {
    const { url, a, b } = await two();
    const atA: unknown[] = [];
    const atB: unknown[] = [];
    a.peers.on('hb', (p) => atA.push(p));
    b.peers.on('hb', (p) => atB.push(p));
    let gapsA = 0;
    a.peers.onGap(() => gapsA++);
    a.peers.send('hb', { n: 1 });
    a.peers.send('hb', { n: 2 });
    a.peers.send('hb', { big: 'x'.repeat(9000) }); // too large for a NOTIFY: dropped, nothing else lost
    await until(() => atB.length === 2);
    expect(atB).toEqual([{ n: 1 }, { n: 2 }]);
    const killer = new pg.Client({ connectionString: url });
    await killer.connect();
    const pidsOf = async (s: PostgresStore) => ['writer', 'listener'].map((k) => (s as unknown as Record<string, { processID: number }>)[k].processID);
    await killer.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [await pidsOf(a)]);
    await killer.end();
    await until(() => gapsA === 1 && a.health().status === 'ok', 10_000);
    b.peers.send('hb', { n: 3 });
    await a.put('things', { id: 'after', name: 'reconnected' });
    await until(() => atA.length === 1 && b.get('things', 'after') !== undefined);
    expect(atA).toEqual([{ n: 3 }]);
    expect(atB).toHaveLength(2);
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses a database a newer central migrated', async () => {
    const url = await cluster.createDatabase();
    await (await open(url)).close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('UPDATE underlay_schema SET version = version + 1');
    await c.end();
    await expect(open(url)).rejects.toThrow(/newer than this central/);
  });
});
