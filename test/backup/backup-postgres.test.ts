import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from '../../central/cli.js';
import { runCliProgram as runCli } from '../support/cli-program.js';
import { postgresReady, TestPostgres } from '../support/postgres.js';
import { startInProcessCentral, type InProcessCentral } from '../central/in-process.js';
import { tempDir } from '../central/support.js';

/** Issue 19: backup and restore with the PostgreSQL store (restore into an empty database, backup from a central on it). */
const ready = postgresReady('backup and restore with PostgreSQL');
const runCliProgram = (conn: { url: string; token: string; caFile: string }, args: string[]) => runCli(conn, args, register);

describe.skipIf(!ready)('backup and restore: PostgreSQL store', () => {
  const work = tempDir('underlay-backup-pg-');
  const centrals: InProcessCentral[] = [];
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await TestPostgres.start();
  }, 60_000);
  afterAll(async () => {
    for (const c of centrals) await c.close();
    await pg?.stop();
  });

  it('restores a file-store backup into an empty database; a central on it serves the same objects and backs it up again', async () => {
    const a = await startInProcessCentral();
    centrals.push(a);
    const caFile = join(work, 'ca.pem');
    writeFileSync(caFile, a.ca);
    const conn = { url: a.url, token: a.adminToken, caFile };
    expect((await a.request('POST', '/api/v1/sites', { body: { name: 'dc1' } })).status).toBe(201);
    for (let i = 0; i < 5; i++) expect((await a.request('POST', '/api/v1/machines', { body: { name: `m${i}`, site: 'dc1', macs: [`52:54:00:19:ab:0${i}`] } })).status).toBe(201);
    const file = join(work, 'backup.json');
    expect((await runCliProgram(conn, ['central', 'backup', file, '--data', join(a.dir, 'data')])).code).toBe(0);

    const url = await pg.createDatabase('restore');
    const target = join(work, 'restored');
    const r = await runCliProgram(conn, ['central', 'restore', file, '--store', url, '--data', join(target, 'data')]);
    expect(r.code, r.stderr).toBe(0);
    // The database holds something now: a second restore into it is refused.
    const again = await runCliProgram(conn, ['central', 'restore', file, '--store', url, '--data', join(work, 'other')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not empty/);

    const b = await startInProcessCentral({ dir: target, options: { store: url } });
    centrals.push(b);
    expect(b.running.identity.caFingerprint).toBe(a.running.identity.caFingerprint);
    const names = (await b.request('GET', '/api/v1/machines')).json.items.map((m: { name: string }) => m.name).sort();
    expect(names).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    for (const n of names) expect((await b.request('GET', `/api/v1/machines/${n}`)).json).toEqual((await a.request('GET', `/api/v1/machines/${n}`)).json);

    // The audit record rides in the write's PostgreSQL transaction too.
    expect((await b.request('PATCH', '/api/v1/machines/m0', { body: { params: { rack: 'r1' } } })).status).toBe(200);
    const audit = (await b.request('GET', '/api/v1/events?object=machine/m0&kind=api-write')).json.items.at(-1);
    expect(audit.changes[0]).toMatchObject({ op: 'update', after: { params: { rack: 'r1' } } });

    const file2 = join(work, 'backup-from-pg.json');
    const b2 = await runCliProgram({ url: b.url, token: b.adminToken, caFile }, ['central', 'backup', file2, '--data', join(target, 'data')]);
    expect(b2.code, b2.stderr).toBe(0);
  }, 120_000);
});
