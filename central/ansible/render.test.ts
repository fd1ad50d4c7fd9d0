import { describe, expect, it } from 'vitest';
import type { InventoryDocument } from '../../shared/api/ansible-inventory.js';
import { fixture, machine, profile, SECRET, site } from './render-fixture.test-support.js';
import { IncrementalInventory } from './incremental.js';
import { renderHostVars, renderInventory, renderInventoryBody, UnknownGroupError, type InventorySource } from './render.js';

describe('renderInventory', () => {
  it('builds the built-in groups, with all/ungrouped and every group a child of all', () => {
    const doc = renderInventory(fixture());
    expect(doc.site_dc1!.hosts).toEqual(['db-1', 'web-1']);
    expect(doc.site_zurich_2!.hosts).toEqual(['new-1']);
    expect(doc.rack_r_1!.hosts).toEqual(['db-1', 'web-1']);
    expect(doc.profile_web!.hosts).toEqual(['web-1']);
    expect(doc.profile_db!.hosts).toEqual(['db-1', 'web-1']);
    expect(doc.bootenv_debian_12!.hosts).toEqual(['db-1', 'web-1']);
    expect(doc.state_deployed!.hosts).toEqual(['db-1', 'web-1']);
    expect(doc.state_discovered!.hosts).toEqual(['new-1']);
    expect(doc.service_etcd!.hosts).toEqual(['web-1']); // passing members only
    expect(doc.ungrouped).toEqual({ hosts: [] });
    const groups = Object.keys(doc).filter((k) => k !== 'all' && k !== '_meta');
    expect(new Set(doc.all!.children)).toEqual(new Set(groups));
  });

  it('applies keyed and conditional group rules', () => {
    const doc = renderInventory(fixture());
    expect(doc.cpu_xeon_gold_6338!.hosts).toEqual(['new-1', 'web-1']);
    expect(doc.cpu_epyc_7763!.hosts).toEqual(['db-1']);
    expect(doc.frontend!.hosts).toEqual(['web-1']);
    expect(doc.database!.hosts).toEqual(['db-1']);
    expect(doc.big_memory!.hosts).toEqual(['web-1']);
  });

  it('resolves params machine → profiles in order → site → global → default in hostvars', () => {
    const hv = renderInventory(fixture())._meta!.hostvars;
    expect(hv['web-1']).toMatchObject({ ansible_host: '10.0.0.1', tier: 'web', port: 80, ntp: 'ntp.dc1', dns: '9.9.9.9', color: 'blue', role: 'frontend' });
    expect(hv['db-1']).toMatchObject({ tier: 'machine-tier', port: 5432 });
    expect(hv['new-1']).toMatchObject({ tier: 'global', ntp: 'ntp.zh', color: 'blue' });
    expect(hv['new-1']).not.toHaveProperty('ansible_host');
    expect(hv['web-1']).toMatchObject({
      underlay_site: 'dc1',
      underlay_rack: 'R-1',
      underlay_macs: ['52:54:00:00:00:01'],
      underlay_state: 'deployed',
      underlay_bootenv: 'debian-12',
      underlay_facts: { cpu: { model: { __ansible_unsafe: 'Xeon Gold 6338' } } },
      underlay_services: { etcd: [{ id: 'a', address: '10.0.0.1', port: 2379, status: 'passing' }] },
    });
  });

  it('marks every fact string unsafe for Ansible and leaves params, group vars and its own vars plain', () => {
    const src = fixture();
    const jinja = "{{ lookup('pipe','touch /tmp/pwned') }}";
    const stmt = "{% for x in range(1) %}{{ lookup('pipe','id') }}{% endfor %}";
    src.machines = src.machines.map((m) => (m.name === 'db-1' ? { ...m, params: { ...m.params, greeting: '{{ inventory_hostname }}' }, facts: { ...m.facts, cpu: { model: jinja }, disks: [{ name: 'sda', model: stmt, sizeBytes: 1 }] } } : m));
    src.profiles = src.profiles.map((p) => (p.name === 'db' ? { ...p, params: { ...p.params, motd: '{{ ansible_host }}' } } : p));
    const body = renderInventoryBody(src).bytes.toString('utf8');
    const doc = JSON.parse(body) as InventoryDocument;
    const hv = doc._meta!.hostvars['db-1']!;
    expect(hv.underlay_facts).toEqual({ cpu: { model: { __ansible_unsafe: jinja } }, memory: { totalBytes: 128 * 1024 ** 3 }, disks: [{ name: { __ansible_unsafe: 'sda' }, sizeBytes: 1, model: { __ansible_unsafe: stmt } }] });
    // Operator-authored values stay templates: params, profile group vars, the inventory's own vars.
    expect(hv).toMatchObject({ greeting: '{{ inventory_hostname }}', role: 'database', underlay_site: 'dc1', underlay_state: 'deployed' });
    expect(doc.profile_db!.vars).toMatchObject({ motd: '{{ ansible_host }}' });
    // The payload is in the document only inside a marker, and the keyed group it lands in is a slug.
    for (const p of [jinja, stmt]) {
      const raw = JSON.stringify(p);
      expect(body.split(raw).length - 1).toBe(1);
      expect(body).toContain(`{"__ansible_unsafe":${raw}}`);
    }
    const cpuGroups = Object.keys(doc).filter((g) => g.startsWith('cpu_'));
    expect(cpuGroups).toContain('cpu_lookup_pipe_touch_tmp_pwned');
    for (const g of Object.keys(doc)) if (g !== '_meta') expect(g).toMatch(/^[a-z_][a-z0-9_]*$/);
    for (const g of Object.values(doc)) if (g && 'vars' in g && g.vars) expect(JSON.stringify(g.vars)).not.toContain('lookup');
    // `--host` says the same.
    expect(renderHostVars(src, 'db-1')!.underlay_facts).toEqual(hv.underlay_facts);
  });

  it('puts profile and site params in group vars, the global profile and all endpoints in all.vars', () => {
    const doc = renderInventory(fixture());
    expect(doc.profile_web!.vars).toEqual({ tier: 'web', port: 80 });
    expect(doc.site_dc1!.vars).toEqual({ ntp: 'ntp.dc1' });
    expect(doc.all!.vars).toMatchObject({ dns: '9.9.9.9', tier: 'global' });
    expect((doc.all!.vars as { underlay_service_endpoints: Record<string, unknown[]> }).underlay_service_endpoints.etcd).toHaveLength(2);
  });

  it('never leaks secret params: not in hostvars, group vars, keyed group names or conditions', () => {
    const src = fixture();
    const body = renderInventoryBody(src).bytes.toString('utf8');
    expect(body).not.toContain(SECRET);
    expect(body).not.toContain('bmc_password');
    expect(body).not.toContain('root_hash');
    const doc = JSON.parse(body) as Record<string, unknown>;
    expect(Object.keys(doc).some((g) => g.startsWith('leak1'))).toBe(false);
    expect(doc.has_secret).toEqual({ hosts: [] }); // the rule's group exists, but nobody matches a secret
    expect(JSON.stringify(renderHostVars(src, 'web-1'))).not.toContain(SECRET);
    // Values stored sealed to agents stay hidden even when their definition no longer says secret.
    src.params = src.params.map((d) => ({ ...d, secret: false }));
    src.machines = src.machines.map((m) => (m.name === 'web-1' ? { ...m, params: { ...m.params, bmc_password: { $sealed: { agent1: 'c2VhbGVk' } } } } : m));
    src.sites = src.sites.map((s) => ({ ...s, params: { ntp: s.params.ntp, bmc_password: { $sealed: { agent1: 'c2VhbGVk' } } } }));
    const sealed = renderInventoryBody(src).bytes.toString('utf8');
    expect(sealed).not.toContain('$sealed');
    expect(sealed).not.toContain('c2VhbGVk');
  });

  it('makes colliding names unique and honours a prefix', () => {
    const src = fixture();
    src.sites = [...src.sites, site('dc-1'), site('dc_1')];
    src.machines = [...src.machines, machine('x-1', { site: 'dc-1' }), machine('x-2', { site: 'dc_1' })];
    const doc = renderInventory(src);
    expect(doc.site_dc_1!.hosts).toEqual(['x-2']);
    expect(doc.site_dc_1_2!.hosts).toEqual(['x-1']);
    const pre = renderInventory(src, { prefix: 'UL' });
    expect(pre.ul_site_dc1!.hosts).toEqual(['db-1', 'web-1']);
    expect(Object.keys(pre).filter((k) => !['all', 'ungrouped', '_meta'].includes(k)).every((k) => k.startsWith('ul_'))).toBe(true);
  });

  it('filters by site and by group', () => {
    const bySite = renderInventory(fixture(), { site: 'Zürich-2' });
    expect(Object.keys(bySite._meta!.hostvars)).toEqual(['new-1']);
    expect(bySite).not.toHaveProperty('site_dc1');
    const byGroup = renderInventory(fixture(), { group: 'profile_db' });
    expect(Object.keys(byGroup._meta!.hostvars).sort()).toEqual(['db-1', 'web-1']);
    expect(byGroup.profile_web!.hosts).toEqual(['web-1']);
    expect(() => renderInventory(fixture(), { group: 'nope' })).toThrow(UnknownGroupError);
  });

  it('the serialised body is byte for byte JSON.stringify of the document, for every view', () => {
    const src = fixture();
    src.machines = [
      ...src.machines,
      machine('odd-1', { address: '10.0.0.9', params: { ansible_host: 'bastion.example', tier: 'own', underlay_site: 'spoof', extra: [1, { a: 'é' }] } }),
      machine('odd-2', { params: {} }),
    ];
    src.profiles = [...src.profiles, profile('jump', { ansible_host: 'jump.example' })];
    src.machines.push(machine('odd-3', { address: '10.0.0.10', profiles: ['jump'] }));
    for (const opts of [{}, { prefix: 'ul' }, { site: 'dc1' }, { group: 'profile_db' }, { group: 'all' }]) {
      expect(renderInventoryBody(src, opts).bytes.toString('utf8')).toBe(JSON.stringify(renderInventory(src, opts)));
    }
    const hv = renderInventory(src)._meta!.hostvars;
    expect(hv['odd-1']).toMatchObject({ ansible_host: 'bastion.example', tier: 'own', underlay_site: 'dc1' });
    expect(hv['odd-3']!.ansible_host).toBe('jump.example');
  });

  it('is deterministic whatever order the store returns', () => {
    const a = renderInventoryBody(fixture());
    const src = fixture();
    src.machines = [...src.machines].reverse();
    src.rules = [...src.rules].reverse();
    src.sites = [...src.sites].reverse();
    const b = renderInventoryBody(src);
    expect(b.bytes.equals(a.bytes)).toBe(true);
    expect(b.etag).toBe(a.etag);
    src.machines = src.machines.map((m) => (m.name === 'db-1' ? { ...m, state: 'failed' as const } : m));
    expect(renderInventoryBody(src).etag).not.toBe(a.etag);
  });

  it('a varied generated fleet: the byte writer and the incremental model equal JSON.stringify of the object form', () => {
    // Seeded (mulberry32), so a failure replays. Own params of every kind: strings that need escaping or not
    // (quotes, controls, lone and paired surrogates, non-ASCII), numbers, integer-like keys (ordered first),
    // nested values, secret, reserved and sealed ones, overrides of inherited params and of ansible_host.
    let a = 21;
    const rnd = () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const strings = ['plain', '', 'say "hi"', 'back\\slash', 'nl\n tab\t \u0001', 'é ß 中文', '😀', 'lone \ud800', '\udfff', '\u2028', '{"__ansible_unsafe":"x"}'];
    const values = (): unknown => pick([() => pick(strings), () => Math.floor(rnd() * 1e6) / 7, () => -0, () => true, () => null, () => [pick(strings), 1, { k: pick(strings) }], () => ({ n: { deep: pick(strings) } }), () => ({ $sealed: 'x' })])();
    // No integer-like keys here: the object form orders those first in a host's variables, the bytes after
    // the inherited params and ansible_host (the same JSON object; the test below covers them).
    const keys = ['role', 'tier', 'port', 'bmc_password', 'underlay_site', 'ansible_host', 'x"y', 'ключ', 'color', 'extra'];
    const src = fixture();
    src.machines = Array.from({ length: 300 }, (_, i) => {
      const params: Record<string, unknown> = {};
      for (let k = Math.floor(rnd() * 5); k > 0; k--) params[pick(keys)] = values();
      return machine(`gen-${i}-${pick(strings).slice(0, 3)}`, {
        site: pick(['dc1', 'Zürich-2', 'nowhere']),
        profiles: rnd() < 0.5 ? [pick(['web', 'db', 'global'])] : ['db', 'web'],
        ...(rnd() < 0.7 ? { address: `10.0.${i >> 8}.${i & 255}` } : {}),
        ...(rnd() < 0.5 ? { rack: pick(['R-1', 'r "2"', 'é']) } : {}),
        macs: [`52:54:00:00:${(i >> 8).toString(16)}:${(i & 255).toString(16)}`],
        params,
        facts: { cpu: { model: pick(strings) }, system: { serial: pick(strings) } },
      });
    });
    const want = JSON.stringify(renderInventory(src));
    expect(renderInventoryBody(src).bytes.toString('utf8')).toBe(want);
    expect(new IncrementalInventory().render(src).bytes.toString('utf8')).toBe(want);
    expect(want).not.toContain(SECRET);
    const hv = renderInventory(src)._meta!.hostvars;
    expect(Object.keys(hv)).toHaveLength(new Set(src.machines.map((m) => m.name)).size);
  });
});
