import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCentrals, REPO, runCli, spawnCentral, tempDir, type CentralProcess } from '../central/support.js';

/** Subnets, reservations, boot environments, templates and param resolution through the real CLI. */
describe('boot configuration in the central', () => {
  let central: CentralProcess;
  let env: Record<string, string>;
  const stateDir = tempDir('underlay-bootcfg-');
  const cli = async (...args: string[]) => {
    const r = await runCli([...args, '-o', 'json'], { env, cwd: REPO });
    return { ...r, json: r.code === 0 && r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
  };

  beforeAll(async () => {
    central = await spawnCentral();
    env = { UNDERLAY_URL: central.url, UNDERLAY_TOKEN: central.token, UNDERLAY_CA: central.caPath };
    expect((await cli('sites', 'create', 'dc1', '--param', 'ntp="198.18.0.1"', '--param', 'tier="site"')).code).toBe(0);
  });
  afterAll(async () => {
    await killAllCentrals();
    await central?.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('creates a subnet from CLI flags and refuses overlaps and out-of-subnet ranges', async () => {
    const s = await cli('subnets', 'create', '--site', 'dc1', '--cidr', '198.18.0.0/24', '--range', '198.18.0.100-198.18.0.200', '--gateway', '198.18.0.1', '--dns', '198.18.0.1,198.18.0.2', '--lease-time', '30m');
    expect(s.code, s.stderr).toBe(0);
    expect(s.json).toMatchObject({ cidr: '198.18.0.0/24', range: { start: '198.18.0.100', end: '198.18.0.200' }, dns: ['198.18.0.1', '198.18.0.2'], leaseTimeSec: 1800, reservationsOnly: false });
    const overlap = await cli('subnets', 'create', '--site', 'dc1', '--cidr', '198.18.0.128/25', '--range', '198.18.0.130-198.18.0.140');
    expect(overlap.code).not.toBe(0);
    expect(overlap.stderr).toMatch(/overlaps/);
    const outside = await cli('subnets', 'create', '--site', 'dc1', '--cidr', '198.18.2.0/24', '--range', '198.18.3.1-198.18.3.9');
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toMatch(/range\.start|outside/);
    const list = await cli('subnets', 'list', '--site', 'dc1');
    expect(list.json.items).toHaveLength(1);
  });

  it('reserves an address inside a subnet of the site, once per address', async () => {
    const r = await cli('reservations', 'create', '--site', 'dc1', '--mac', '52-54-00-AA-00-01', '--address', '198.18.0.50', '--hostname', 'web-01');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ mac: '52:54:00:aa:00:01', address: '198.18.0.50', hostname: 'web-01' });
    const dupAddr = await cli('reservations', 'create', '--site', 'dc1', '--mac', '52:54:00:aa:00:02', '--address', '198.18.0.50');
    expect(dupAddr.code).toBe(5); // 409
    const outside = await cli('reservations', 'create', '--site', 'dc1', '--mac', '52:54:00:aa:00:03', '--address', '198.18.9.9');
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toMatch(/none of site dc1/);
  });

  it('imports the boot environment library and its snippets, idempotently', async () => {
    const first = await cli('bootenvs', 'import', 'images');
    expect(first.code, first.stderr).toBe(0);
    const names = (first.json as { kind: string; name: string }[]).filter((r) => r.kind === 'bootenv').map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['discovery', 'local', 'fedora-coreos-live', 'flatcar', 'linuxkit', 'ubuntu-cloud', 'debian', 'rocky']));
    const again = await cli('bootenvs', 'import', 'images');
    expect((again.json as { result: string }[]).every((r) => r.result === 'updated')).toBe(true);
    const shown = await cli('bootenvs', 'show', 'flatcar');
    expect(shown.json.bootParams).toContain('flatcar.first_boot=1');
  });

  it('refuses a boot environment whose templates do not parse', async () => {
    const bad = await central.request('POST', '/api/v1/bootenvs', {
      body: { name: 'broken', os: { family: 'x' }, kernel: { url: 'k' }, bootParams: '{{ unclosed', templates: [] },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/template/);
  });

  it('resolves params machine → profiles in order → site → global → default, with sources', async () => {
    expect((await cli('params', 'create', 'role', '--schema', '{"type":"string"}', '--default', '"none"')).code).toBe(0);
    expect((await cli('params', 'create', 'ntp', '--schema', '{"type":"string"}')).code).toBe(0);
    expect((await cli('params', 'create', 'tier', '--schema', '{"type":"string"}')).code).toBe(0);
    expect((await cli('params', 'create', 'root_pw', '--schema', '{"type":"string"}', '--secret')).code).toBe(0);
    expect((await cli('params', 'create', 'unset_one', '--schema', '{"type":"integer"}', '--default', '7')).code).toBe(0);
    // A secret can only be stored sealed to an agent: refused while none has joined, accepted after.
    const early = await cli('profiles', 'create', 'global', '--param', 'tier="global"', '--param', 'root_pw="hunter2"');
    expect(early.code).toBe(5);
    expect(early.stderr).toMatch(/root_pw.*sealed to an agent/);
    const jt = JSON.parse((await runCli(['token', 'create', '--role', 'agent-join', '--site', 'dc1', '-o', 'json'], { env })).stdout) as { token: string };
    const joined = await runCli(['agent', 'join', '--central', central.url, '--token', jt.token, '--state', `${stateDir}/agent`]);
    expect(joined.code, joined.stderr).toBe(0);
    const g = await cli('profiles', 'create', 'global', '--param', 'tier="global"', '--param', 'root_pw="hunter2"');
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout).not.toContain('hunter2');
    expect(readFileSync(join(central.dataDir, 'store.json'), 'utf8') + readdirSync(central.dataDir).filter((f) => f.startsWith('journal')).map((f) => readFileSync(join(central.dataDir, f), 'utf8')).join('')).not.toContain('hunter2');
    expect((await cli('profiles', 'create', 'web', '--param', 'role="web"', '--param', 'tier="profile-web"')).code).toBe(0);
    expect((await cli('profiles', 'create', 'edge', '--param', 'role="edge"')).code).toBe(0);
    const m = await cli('machines', 'create', 'web-01', '--site', 'dc1', '--mac', '52:54:00:aa:00:01', '--profile', 'web', '--profile', 'edge');
    expect(m.code, m.stderr).toBe(0);
    const r = await cli('machines', 'params', 'web-01', '--resolved');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.role).toMatchObject({ value: 'web', source: 'profile:web' });
    expect(r.json.tier).toMatchObject({ value: 'profile-web', source: 'profile:web' });
    expect(r.json.ntp).toMatchObject({ value: '198.18.0.1', source: 'site:dc1' });
    expect(r.json.unset_one).toMatchObject({ value: 7, source: 'default' });
    expect(r.json.root_pw).toMatchObject({ value: '[secret]', source: 'global', secret: true });
    expect(r.stdout).not.toContain('hunter2');
    expect((await cli('machines', 'update', 'web-01', '--param', 'role="db"')).code).toBe(0);
    const again = await cli('machines', 'params', 'web-01', '--resolved');
    expect(again.json.role).toMatchObject({ value: 'db', source: 'machine' });
  });

  it('refuses a param value that breaks its definition, naming the param', async () => {
    const bad = await cli('machines', 'update', 'web-01', '--param', 'unset_one="seven"');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unset_one/);
  });
});
