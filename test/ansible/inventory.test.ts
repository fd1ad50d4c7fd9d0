import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCentrals, REPO, runCli, spawnCentral, type CentralProcess } from '../central/support.js';
import { checkPrereqs } from '../support/require.js';
import { ansibleEnv, run, SCRIPT, SECRET, SECRET_HASH, seedFleet } from './fleet.js';

/**
 * The dynamic inventory as Ansible sees it: the real ansible-inventory and ansible-playbook, pointed
 * at scripts/ansible/underlay-inventory, against a real central process.
 */
const ready = checkPrereqs('ansible inventory', { commands: ['ansible-inventory', 'ansible-playbook'] });
const VALID_GROUP = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Doc = Record<string, { hosts?: string[]; children?: string[]; vars?: Record<string, unknown> }> & { _meta: { hostvars: Record<string, Record<string, unknown>> } };

describe.skipIf(!ready)('Ansible dynamic inventory (real ansible-inventory / ansible-playbook)', () => {
  let central: CentralProcess;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let api: Doc;

  beforeAll(async () => {
    central = await spawnCentral();
    home = mkdtempSync(join(tmpdir(), 'underlay-ansible-'));
    env = ansibleEnv(central, home);
    await seedFleet(central);
    const r = await central.request('GET', '/api/v1/inventory');
    expect(r.status).toBe(200);
    api = r.json as Doc;
  });
  afterAll(async () => {
    await central?.cleanup();
    await killAllCentrals();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('the API document has the expected groups, sanitised names and resolved vars', () => {
    expect(api.site_dc1!.hosts).toEqual(['etcd-1', 'web-1', 'web-2']);
    expect(api.site_dc_2!.hosts).toEqual(['new-1']); // "dc_2" is already a clean name: it keeps it
    expect(api.site_dc_2_2!.hosts).toEqual(['etcd-2', 'etcd-3']); // "dc-2" collides and gets a suffix
    expect(api.rack_r_1!.hosts).toEqual(['web-1', 'web-2']);
    expect(api.profile_etcd_node!.hosts).toEqual(['etcd-1', 'etcd-2', 'etcd-3']);
    expect(api.profile_etcd_node!.vars).toEqual({ etcd_data: '/var/lib/etcd' });
    expect(api.site_dc1!.vars).toEqual({ ntp: 'ntp.dc1.example' });
    // Machines created through the API start discovered (the lifecycle moves them on; issue 12).
    expect(api.state_discovered!.hosts).toEqual(['etcd-1', 'etcd-2', 'etcd-3', 'new-1', 'web-1', 'web-2']);
    expect(api.bootenv_local!.hosts).toHaveLength(5);
    expect(api.service_etcd!.hosts).toEqual(['etcd-1', 'etcd-2']); // etcd-3 is critical
    expect(api.cpu_xeon_gold_6338!.hosts).toEqual(['new-1', 'web-1']); // "®" dropped
    expect(api._10000!.hosts).toEqual(['web-1']); // leading digit, no prefix
    expect(api.role_control!.hosts).toEqual(['etcd-1', 'etcd-2', 'etcd-3']);
    expect(api.grosse_256_gib!.hosts).toEqual(['etcd-1', 'etcd-2', 'web-1']); // unicode transliterated
    for (const g of Object.keys(api)) if (g !== '_meta') expect(g).toMatch(VALID_GROUP);
    expect(api._meta.hostvars['etcd-2']).toMatchObject({ ansible_host: '198.18.1.22', etcd_data: '/var/lib/etcd', tier: 'web-tier', ntp: 'ntp.dc2.example', dns: '9.9.9.9', color: 'blue', role: 'control' });
  });

  it('ansible-inventory --list sees the same hosts, groups, children and vars as the API', async () => {
    const r = await run('ansible-inventory', ['-i', SCRIPT, '--list', '--export'], env);
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout) as Doc;
    // Hostvars: exactly what the API says, for every host.
    expect(Object.keys(seen._meta.hostvars).sort()).toEqual(Object.keys(api._meta.hostvars).sort());
    for (const [h, vars] of Object.entries(api._meta.hostvars)) expect(seen._meta.hostvars[h], h).toEqual(vars);
    // Groups: Ansible drops empty groups from --list; every non-empty API group is there with the same members and vars.
    const nonEmpty = Object.entries(api).filter(([g, v]) => g !== '_meta' && g !== 'all' && ((v.hosts?.length ?? 0) > 0 || v.vars));
    expect(nonEmpty.length).toBeGreaterThan(15);
    for (const [g, v] of nonEmpty) {
      expect(seen[g], g).toBeDefined();
      expect([...(seen[g]!.hosts ?? [])].sort(), g).toEqual([...(v.hosts ?? [])].sort());
      if (v.vars) expect(seen[g]!.vars, g).toEqual(v.vars);
    }
    expect(new Set(seen.all!.children)).toEqual(new Set(api.all!.children));
    expect(seen.all!.vars).toEqual(api.all!.vars);
  });

  it('the inventory plugin (underlay.underlay.inventory) gives Ansible the same inventory as the script', async () => {
    const plugin = join(home, 'underlay.yml');
    writeFileSync(plugin, 'plugin: underlay.underlay.inventory\n');
    const penv = { ...env, ANSIBLE_COLLECTIONS_PATH: join(REPO, 'scripts/ansible/collections') };
    const viaPlugin = await run('ansible-inventory', ['-i', plugin, '--list', '--export'], penv);
    expect(viaPlugin.code, viaPlugin.stderr).toBe(0);
    const viaScript = await run('ansible-inventory', ['-i', SCRIPT, '--list', '--export'], env);
    expect(viaScript.code, viaScript.stderr).toBe(0);
    const seen = JSON.parse(viaPlugin.stdout) as Doc;
    expect(seen).toEqual(JSON.parse(viaScript.stdout));
    expect(Object.keys(seen._meta.hostvars).sort()).toEqual(Object.keys(api._meta.hostvars).sort());
    // A view option goes through to the central.
    writeFileSync(plugin, 'plugin: underlay.underlay.inventory\nsite: dc-2\n');
    const bySite = await run('ansible-inventory', ['-i', plugin, '--list', '--export'], penv);
    expect(Object.keys((JSON.parse(bySite.stdout) as Doc)._meta.hostvars).sort()).toEqual(['etcd-2', 'etcd-3']);
    // A wrong token is a clear error that does not echo the token.
    const bad = await run('ansible-inventory', ['-i', plugin, '--list'], { ...penv, UNDERLAY_TOKEN: 'not-a-real-token-xyz' });
    expect(bad.stderr).toContain('HTTP 401');
    expect(bad.stderr).not.toContain('not-a-real-token-xyz');
  });

  it('ansible-inventory --graph equals underlay inventory --graph, and --host returns the host vars', async () => {
    const real = await run('ansible-inventory', ['-i', SCRIPT, '--graph'], env);
    expect(real.code, real.stderr).toBe(0);
    const ours = await runCli(['inventory', '--graph'], { env: { UNDERLAY_URL: central.url, UNDERLAY_TOKEN: central.token, UNDERLAY_CA: central.caPath, UNDERLAY_INVENTORY_CACHE: 'off' } });
    expect(ours.code, ours.stderr).toBe(0);
    expect(ours.stdout.trim()).toBe(real.stdout.trim());
    expect(real.stdout).toContain('  |--@service_etcd:\n  |  |--etcd-1\n  |  |--etcd-2\n');

    const host = await run(SCRIPT, ['--host', 'etcd-1'], env);
    expect(host.code, host.stderr).toBe(0);
    expect(JSON.parse(host.stdout)).toEqual(api._meta.hostvars['etcd-1']);
  });

  it('never shows a secret param: not in --list, --host, --graph --vars, group names or group vars', async () => {
    const outputs = [
      (await central.request('GET', '/api/v1/inventory')).text,
      (await central.request('GET', '/api/v1/inventory?group=site_dc1')).text,
      (await run('ansible-inventory', ['-i', SCRIPT, '--list'], env)).stdout,
      (await run('ansible-inventory', ['-i', SCRIPT, '--graph', '--vars'], env)).stdout,
    ];
    for (const h of Object.keys(api._meta.hostvars)) {
      outputs.push((await run(SCRIPT, ['--host', h], env)).stdout);
      outputs.push((await run('ansible-inventory', ['-i', SCRIPT, '--host', h], env)).stdout);
    }
    expect(outputs.join('').length).toBeGreaterThan(1000);
    for (const text of outputs) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(SECRET_HASH);
      expect(text).not.toContain('console_password');
      expect(text).not.toContain('root_hash');
    }
    // A rule on a secret param sees no value: the conditional group exists (named by its rule) but stays empty.
    expect(api.has_bmc_secret).toEqual({ hosts: [] });
    expect(Object.keys(api).some((g) => g.startsWith('leak'))).toBe(false);
  });

  it('ansible-playbook over the inventory sees hostvars, profile and site group vars, and service endpoints', async () => {
    const dir = join(home, 'play');
    const out = join(dir, 'out');
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(dir, 'site.yml'),
      `- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: hostvars, group vars and services are there; secrets are not
      ansible.builtin.assert:
        that:
          - underlay_site is defined
          - (role is defined) == (inventory_hostname != 'new-1')
          - tier is defined
          - console_password is not defined
          - root_hash is not defined
          - underlay_service_endpoints.etcd | length == 3
    - name: dump what this host sees
      ansible.builtin.copy:
        dest: "${out}/{{ inventory_hostname }}.json"
        content: "{{ {'role': role | default(None), 'tier': tier, 'ntp': ntp | default(None), 'dns': dns, 'etcd_data': etcd_data | default(None), 'ansible_host': ansible_host | default(None), 'groups': group_names, 'mine': underlay_services, 'endpoints': underlay_service_endpoints} | to_json }}"

- hosts: profile_etcd_node
  connection: local
  gather_facts: false
  tasks:
    - name: the profile's group var reaches its members, the peer list is built from the service group
      ansible.builtin.copy:
        dest: "${out}/{{ inventory_hostname }}.peers"
        content: "{{ etcd_data }} {{ groups['service_etcd'] | map('extract', hostvars, 'ansible_host') | join(',') }}"
`,
    );
    const r = await run('ansible-playbook', ['-i', SCRIPT, join(dir, 'site.yml')], env, dir);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/PLAY RECAP/);
    expect(r.stdout).not.toMatch(/failed=[1-9]/);

    const hosts = Object.keys(api._meta.hostvars);
    expect(readdirSync(out).filter((f) => f.endsWith('.json')).sort()).toEqual(hosts.map((h) => `${h}.json`).sort());
    for (const h of hosts) {
      const seen = JSON.parse(readFileSync(join(out, `${h}.json`), 'utf8'));
      const hv = api._meta.hostvars[h]!;
      expect(seen.role ?? undefined, h).toEqual(hv.role);
      expect(seen.tier, h).toEqual(hv.tier);
      expect(seen.dns, h).toBe('9.9.9.9');
      expect(seen.ntp ?? undefined, h).toEqual(hv.ntp);
      expect(seen.mine, h).toEqual(hv.underlay_services);
      expect(seen.endpoints).toEqual(api.all!.vars!.underlay_service_endpoints);
      const expectedGroups = Object.entries(api).filter(([g, v]) => g !== '_meta' && g !== 'all' && v.hosts?.includes(h)).map(([g]) => g);
      expect([...seen.groups].sort(), h).toEqual(expectedGroups.sort());
    }
    expect(JSON.parse(readFileSync(join(out, 'etcd-1.json'), 'utf8')).mine).toEqual({ etcd: [{ id: 'etcd-1-2379', address: '198.18.0.21', port: 2379, status: 'passing' }] });
    // Site group var (dc1 sets ntp) and profile group var (etcd-node sets etcd_data) reached the play.
    expect(JSON.parse(readFileSync(join(out, 'web-1.json'), 'utf8')).ntp).toBe('ntp.dc1.example');
    for (const h of ['etcd-1', 'etcd-2', 'etcd-3']) expect(readFileSync(join(out, `${h}.peers`), 'utf8')).toBe('/var/lib/etcd 198.18.0.21,198.18.1.22');
  });

  it('the script caches by ETag: an unchanged inventory is a 304 served from the cache, a change refetches', async () => {
    const cacheDir = join(home, 'inv-cache');
    const cenv = { ...env, UNDERLAY_INVENTORY_CACHE: cacheDir };
    const first = await run(SCRIPT, ['--list'], cenv);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual(api);
    const [file] = readdirSync(cacheDir);
    const entry = JSON.parse(readFileSync(join(cacheDir, file!), 'utf8'));
    // Tamper with the cached body: if the second run prints the tampered text, it came from the 304 path.
    writeFileSync(join(cacheDir, file!), JSON.stringify({ ...entry, body: '{"marker":{"hosts":[]}}' }));
    expect(JSON.parse((await run(SCRIPT, ['--list'], cenv)).stdout)).toEqual({ marker: { hosts: [] } });
    const r = await central.request('PATCH', '/api/v1/machines/new-1', { body: { rack: 'R-9' } });
    expect(r.status).toBe(200);
    const fresh = JSON.parse((await run(SCRIPT, ['--list'], cenv)).stdout) as Doc;
    expect(fresh.rack_r_9!.hosts).toContain('new-1');
  });

  it('serves 304 for a matching If-None-Match, filters by site and group, and honours ?prefix', async () => {
    const a = await central.request('GET', '/api/v1/inventory');
    const etag = String(a.headers.etag);
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const b = await central.request('GET', '/api/v1/inventory', { headers: { 'if-none-match': etag } });
    expect(b.status).toBe(304);
    expect(b.text).toBe('');
    const bySite = (await central.request('GET', '/api/v1/inventory?site=dc-2')).json as Doc;
    expect(Object.keys(bySite._meta.hostvars).sort()).toEqual(['etcd-2', 'etcd-3']);
    const byGroup = (await central.request('GET', '/api/v1/inventory?group=service_etcd')).json as Doc;
    expect(Object.keys(byGroup._meta.hostvars).sort()).toEqual(['etcd-1', 'etcd-2']);
    expect((await central.request('GET', '/api/v1/inventory?group=no_such_group')).status).toBe(404);
    const pre = (await central.request('GET', '/api/v1/inventory?prefix=ul')).json as Doc;
    expect(pre.ul_site_dc1!.hosts).toEqual(['etcd-1', 'web-1', 'web-2']);
    expect(pre.ul_10000!.hosts).toEqual(['web-1']);
    // A different view is a different document and ETag; the same view after a write is too.
    expect((await central.request('GET', '/api/v1/inventory?prefix=ul')).headers.etag).not.toBe(etag);
    const viewer = JSON.parse((await central.request('POST', '/api/v1/tokens', { body: { role: 'viewer' } })).text).token as string;
    expect((await central.request('GET', '/api/v1/inventory', { token: viewer })).status).toBe(200);
    expect((await central.request('GET', '/api/v1/inventory', { token: null })).status).toBe(401);
  });

  it('documents the inventory, group rules and services in the OpenAPI document', async () => {
    const r = await central.request('GET', '/api/v1/openapi.json');
    expect(r.status).toBe(200);
    const paths = Object.keys(r.json.paths);
    for (const p of ['/api/v1/inventory', '/api/v1/inventory/hosts/{name}', '/api/v1/group-rules', '/api/v1/group-rules/{ref}', '/api/v1/services', '/api/v1/services/{name}', '/api/v1/services/{name}/members', '/api/v1/services/{name}/members/{id}/pass', '/api/v1/services/{name}/wait']) {
      expect(paths).toContain(p);
    }
    for (const c of ['GroupRule', 'Service', 'ServiceMember', 'AnsibleInventory']) expect(Object.keys(r.json.components.schemas)).toContain(c);
    const bad = await central.request('POST', '/api/v1/group-rules', { body: { name: 'x', kind: 'condition', group: 'g', when: { path: 'facts.a', op: 'gt', value: 'many' } } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain('needs a number');
  });
});
