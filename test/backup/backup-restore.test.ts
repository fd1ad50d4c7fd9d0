import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { register } from '../../central/cli.js';
import { runCliProgram as runCli } from '../support/cli-program.js';
import { startInProcessCentral, type InProcessCentral } from '../central/in-process.js';
import { tempDir } from '../central/support.js';

/**
 * Issue 19: `underlay central backup FILE` while the central takes writes, `underlay central restore FILE`
 * into an empty data dir, and a central started on it serves the same inventory (as of the backup's instant).
 */
const work = tempDir('underlay-backup-');
/** The `underlay` program with the central's commands (the binary loads them lazily). */
const runCliProgram = (conn: { url: string; token: string; caFile: string }, args: string[]) => runCli(conn, args, register);
const started: InProcessCentral[] = [];
afterAll(async () => {
  for (const c of started) await c.close();
});

describe('backup and restore', () => {
  it('a backup taken under write load restores to an identical inventory (one consistent instant)', async () => {
    const a = await startInProcessCentral();
    started.push(a);
    const caFile = join(work, 'ca.pem');
    writeFileSync(caFile, a.ca);
    const conn = { url: a.url, token: a.adminToken, caFile };
    expect((await a.request('POST', '/api/v1/sites', { body: { name: 'dc1', params: { counter: -1 } } })).status).toBe(201);

    // The load: machine m<i>, then the site's counter set to i; each step acknowledged before the next.
    let acked = -1;
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop && i < 2000; i++) {
        const mac = `52:54:00:19:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
        expect((await a.request('POST', '/api/v1/machines', { body: { name: `m${i}`, site: 'dc1', macs: [mac], params: { rack: `r${i % 7}` } } })).status).toBe(201);
        expect((await a.request('PATCH', '/api/v1/sites/dc1', { body: { params: { counter: i } } })).status).toBe(200);
        acked = i;
      }
    })();
    // More load beside it: two writers creating profiles pw-<i> as fast as they are acknowledged.
    const profileAcked = [-1, -1];
    const profileWriters = [0, 1].map(async (w) => {
      for (let i = 0; !stop && i < 3000; i++) {
        expect((await a.request('POST', '/api/v1/profiles', { body: { name: `p${w}-${i}`, params: { n: i } } })).status).toBe(201);
        profileAcked[w] = i;
      }
    });
    while (acked < 20) await new Promise((r) => setTimeout(r, 20));
    const ackedBefore = acked;
    const profilesBefore = [...profileAcked];
    const file = join(work, 'backup.json');
    const b = await runCliProgram(conn, ['central', 'backup', file, '--data', join(a.dir, 'data')]);
    expect(b.code, b.stderr).toBe(0);
    const ackedAfterBackup = acked;
    while (acked < ackedAfterBackup + 10) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all([writer, ...profileWriters]);
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');

    // Restore refuses a data dir that holds anything, and restores into an empty one.
    const busy = join(work, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'keep'), 'x');
    const refused = await runCliProgram(conn, ['central', 'restore', file, '--data', busy]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/not empty/);
    expect(readFileSync(join(busy, 'keep'), 'utf8')).toBe('x');
    const target = join(work, 'restored');
    const r = await runCliProgram(conn, ['central', 'restore', file, '--data', join(target, 'data')]);
    expect(r.code, r.stderr).toBe(0);

    const restored = await startInProcessCentral({ dir: target });
    started.push(restored);
    // The same identity: agents that pinned the CA and the signing key keep working.
    expect(restored.running.identity.caFingerprint).toBe(a.running.identity.caFingerprint);
    expect(restored.adminToken).toBe(a.adminToken);
    const machines = (await restored.request('GET', '/api/v1/machines?limit=5000')).json.items as { name: string; id: string }[];
    const indexes = machines.map((m) => Number(m.name.slice(1))).sort((x, y) => x - y);
    const last = indexes.at(-1)!;
    // Every write acknowledged before the backup began is in it; it is a prefix (no gaps) …
    expect(last).toBeGreaterThanOrEqual(ackedBefore);
    expect(last).toBeLessThanOrEqual(ackedAfterBackup + 1);
    expect(indexes).toEqual([...Array(last + 1).keys()]);
    // … and one instant: the site's counter is the last machine's index or the one before (its PATCH follows the create).
    const counter = (await restored.request('GET', '/api/v1/sites/dc1')).json.params.counter as number;
    expect([last, last - 1]).toContain(counter);
    // Each restored machine is the original's, field for field.
    for (const m of machines) expect(m).toEqual((await a.request('GET', `/api/v1/machines/${m.name}`)).json);
    // The concurrent writers' profiles: each writer's a prefix holding everything acknowledged before the backup.
    const profiles = (await restored.request('GET', '/api/v1/profiles?limit=10000')).json.items as { name: string }[];
    for (const w of [0, 1]) {
      const mine = profiles.filter((p) => p.name.startsWith(`p${w}-`)).map((p) => Number(p.name.split('-')[1])).sort((x, y) => x - y);
      expect(mine.length).toBeGreaterThan(profilesBefore[w]!);
      expect(mine).toEqual([...Array(mine.length).keys()]);
    }
    // The Ansible inventory of the restored central lists exactly those machines.
    const inv = (await restored.request('GET', '/api/v1/inventory')).json as { _meta: { hostvars: Record<string, unknown> } };
    expect(Object.keys(inv._meta.hostvars).sort()).toEqual(machines.map((m) => m.name).sort());
  }, 120_000);

  it('refuses a backup from a newer schema, and a file that is not a backup, before touching the data dir', async () => {
    const a = started[0]!;
    const conn = { url: a.url, token: a.adminToken, caFile: join(work, 'ca.pem') };
    const newer = join(work, 'newer.json');
    writeFileSync(newer, JSON.stringify({ format: 'underlay-central-backup', schemaVersion: 99, createdAt: new Date().toISOString(), collections: {} }));
    const r = await runCliProgram(conn, ['central', 'restore', newer, '--data', join(work, 'never')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/schema version 99, newer than this central/);
    writeFileSync(join(work, 'junk.json'), '{"hello": 1}');
    const junk = await runCliProgram(conn, ['central', 'restore', join(work, 'junk.json'), '--data', join(work, 'never')]);
    expect(junk.code).toBe(1);
    expect(junk.stderr).toMatch(/not an Underlay central backup/);
    expect(() => statSync(join(work, 'never'))).toThrow();
  });

  it('GET /api/v1/backup needs an unscoped admin token and never carries key material', async () => {
    const a = started[0]!;
    expect((await a.request('GET', '/api/v1/backup', { token: await a.token('operator') })).status).toBe(403);
    const ok = await a.request('GET', '/api/v1/backup');
    expect(ok.status).toBe(200);
    expect(ok.text).not.toContain('PRIVATE KEY');
    expect(ok.json.files).toBeUndefined();
  });
});
