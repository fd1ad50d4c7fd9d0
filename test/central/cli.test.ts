import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { rmSync } from 'node:fs';
import { killAllCentrals, runCli, spawnCentral, tempDir, type CentralProcess } from './support.js';

/** The `underlay` CLI as a user runs it, against a real central over HTTPS. */
let central: CentralProcess;
let env: Record<string, string>;

beforeAll(async () => {
  central = await spawnCentral();
  env = { UNDERLAY_URL: central.url, UNDERLAY_TOKEN: central.token, UNDERLAY_CA: central.caPath };
});
afterAll(async () => {
  await central?.cleanup();
  await killAllCentrals();
});

const cli = (...args: string[]) => runCli(args, { env });
function ok(r: { code: number | null; stdout: string; stderr: string }) {
  expect(r.code, `stderr: ${r.stderr}`).toBe(0);
  expect(r.stderr).toBe('');
  return r.stdout;
}

describe('underlay CLI', () => {
  it('creates a site and a machine, and shows them as json, yaml and table', async () => {
    const site = JSON.parse(ok(await cli('sites', 'create', 'dc1', '-o', 'json')));
    expect(site).toMatchObject({ name: 'dc1' });
    const m = JSON.parse(ok(await cli('machines', 'create', 'web-01', '--site', 'dc1', '--mac', '52:54:00:00:00:01', '-o', 'json')));
    expect(m).toMatchObject({ name: 'web-01', site: 'dc1', macs: ['52:54:00:00:00:01'] });
    // Created through the CLI = visible through the API.
    expect((await central.request('GET', '/api/v1/machines/web-01')).json.id).toBe(m.id);

    const list = JSON.parse(ok(await cli('machines', 'list', '-o', 'json')));
    expect(list.total).toBe(1);
    expect(list.items[0].name).toBe('web-01');

    const shown = parseYaml(ok(await cli('machines', 'show', 'web-01', '-o', 'yaml')));
    expect(shown).toMatchObject({ id: m.id, name: 'web-01', macs: ['52:54:00:00:00:01'] });

    const table = ok(await cli('machines', 'list', '-o', 'table'));
    const row = table.split('\n').find((l) => l.includes('web-01'));
    expect(row).toBeDefined();
    expect(row).toContain('dc1');
    expect(row).toContain('52:54:00:00:00:01');
    expect(table.split('\n').find((l) => l.includes('name'))).toContain('site');

    // The global -o flag works before the subcommand too.
    expect(JSON.parse(ok(await cli('-o', 'json', 'sites', 'show', 'dc1'))).id).toBe(site.id);
  });

  it('lists with filters, updates and deletes', async () => {
    ok(await cli('sites', 'create', 'dc2'));
    ok(await cli('machines', 'create', 'db-01', '--site', 'dc2', '--mac', '52:54:00:00:00:02', '--param', 'role=db', '--param', 'disks=4'));
    const bySite = JSON.parse(ok(await cli('machines', 'list', '--site', 'dc2', '-o', 'json')));
    expect(bySite.items.map((x: { name: string }) => x.name)).toEqual(['db-01']);
    expect(bySite.items[0].params).toEqual({ role: 'db', disks: 4 });
    const byParam = JSON.parse(ok(await cli('machines', 'list', '--param', 'role=db', '-o', 'json')));
    expect(byParam.items.map((x: { name: string }) => x.name)).toEqual(['db-01']);
    const byMac = JSON.parse(ok(await cli('machines', 'list', '--mac', '52:54:00:00:00:01', '-o', 'json')));
    expect(byMac.items.map((x: { name: string }) => x.name)).toEqual(['web-01']);

    const updated = JSON.parse(ok(await cli('machines', 'update', 'db-01', '--rack', 'r7', '--no-netboot', '-o', 'json')));
    expect(updated).toMatchObject({ rack: 'r7', netboot: false });
    expect((await central.request('GET', '/api/v1/machines/db-01')).json).toMatchObject({ rack: 'r7', netboot: false });

    const deleted = ok(await cli('machines', 'delete', 'db-01'));
    expect(deleted).toContain('db-01');
    expect((await central.request('GET', '/api/v1/machines/db-01')).status).toBe(404);
  });

  it('token create --role viewer -o json prints {"token": …, "expiresAt": null} and nothing else; the token has the viewer role', async () => {
    const r = await cli('token', 'create', '--role', 'viewer', '-o', 'json');
    const out = ok(r);
    expect(out.endsWith('\n')).toBe(true);
    expect(out.trim().split('\n')).toHaveLength(1);
    const parsed = JSON.parse(out);
    expect(Object.keys(parsed)).toEqual(['token', 'expiresAt']);
    expect(parsed.expiresAt).toBeNull(); // API tokens do not expire unless --ttl says so
    expect(parsed.token).toMatch(/^ul_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);

    const asViewer = { ...env, UNDERLAY_TOKEN: parsed.token };
    const list = await runCli(['sites', 'list', '-o', 'json'], { env: asViewer });
    expect(JSON.parse(ok(list)).items.length).toBeGreaterThan(0);
    const denied = await runCli(['sites', 'create', 'nope'], { env: asViewer });
    expect(denied.code).not.toBe(0);
    expect(denied.stdout).toBe('');
    expect(denied.stderr.trim().split('\n')).toHaveLength(1);
    expect(denied.stderr).toMatch(/^error: .*viewer.*403/);
  });

  it('prints API errors as one readable line on stderr and exits non-zero', async () => {
    const cases: [string[], RegExp][] = [
      [['machines', 'show', 'no-such-machine'], /^error: machine "no-such-machine" not found \[404 not_found\]$/],
      [['sites', 'create', 'dc1'], /^error: .*dc1.*already in use.*\[409 conflict\]$/],
      [['machines', 'create', 'x-01', '--site', 'atlantis'], /^error: site "atlantis" does not exist.*\[400 invalid_request\]$/],
      [['machines', 'create', 'x-02', '--site', 'dc1', '--mac', 'not-a-mac'], /^error: macs\.0: .*\[400 invalid_request\]$/],
      [['sites', 'delete', 'dc1'], /^error: site "dc1" still has 1 machine.*\[409 conflict\]$/],
    ];
    for (const [args, pattern] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stdout, args.join(' ')).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0], args.join(' ')).toMatch(pattern);
    }
  });

  it('connects with --url --token --ca flags, which override the environment', async () => {
    const flags = ['--url', central.url, '--token', central.token, '--ca', central.caPath];
    const r = await runCli([...flags, 'sites', 'list', '-o', 'json']);
    expect(JSON.parse(ok(r)).items.map((s: { name: string }) => s.name)).toContain('dc1');
    // Flags win over a wrong environment.
    const wrongEnv = { UNDERLAY_URL: 'https://127.0.0.1:1', UNDERLAY_TOKEN: 'ul_0000000000000000_' + 'A'.repeat(43), UNDERLAY_CA: '/nonexistent/ca.pem' };
    expect(JSON.parse(ok(await runCli([...flags, 'sites', 'show', 'dc1', '-o', 'json'], { env: wrongEnv }))).name).toBe('dc1');
  });

  it('fails with one clear line when the CA is missing, the token is wrong or nothing is configured', async () => {
    const noCa = await runCli(['sites', 'list'], { env: { UNDERLAY_URL: central.url, UNDERLAY_TOKEN: central.token } });
    expect(noCa.code).not.toBe(0);
    expect(noCa.stderr.trim().split('\n')).toHaveLength(1);
    expect(noCa.stderr).toMatch(/certificate is not trusted.*--ca/);

    const badToken = await runCli(['sites', 'list'], { env: { ...env, UNDERLAY_TOKEN: 'ul_0000000000000000_' + 'A'.repeat(43) } });
    expect(badToken.code).not.toBe(0);
    expect(badToken.stderr).toMatch(/^error: .*not valid.*\[401 unauthenticated\]\n$/);

    const empty = tempDir('underlay-cli-cwd-'); // no ./data here for the CLI to fall back on
    try {
      const nothing = await runCli(['sites', 'list'], { cwd: empty });
      expect(nothing.code).not.toBe(0);
      expect(nothing.stderr).toMatch(/UNDERLAY_URL/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
