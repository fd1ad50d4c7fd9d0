import type { GroupRule } from '../../shared/api/ansible-inventory.js';
import type { Machine, ParamDef, Profile, Site } from '../../shared/api/resources.js';
import type { Service } from '../../shared/api/services.js';
import type { InventorySource, RenderOptions } from './render.js';

/** A small inventory with the renderer's edge cases (secrets, clashing names, unicode), for its tests. */

const T = { createdAt: '2024-01-01T00:00:00Z', updatedAt: '2024-01-01T00:00:00Z' };
export const SECRET = 'hunter2-do-not-leak';

export function site(name: string, params: Record<string, unknown> = {}): Site {
  return { id: `s-${name}`, name, params, ...T };
}
export function profile(name: string, params: Record<string, unknown> = {}): Profile {
  return { id: `p-${name}`, name, params, ...T };
}
export function def(name: string, extra: Partial<ParamDef> = {}): ParamDef {
  return { id: `d-${name}`, name, schema: {}, secret: false, ...extra, ...T };
}
export function machine(name: string, extra: Partial<Machine> = {}): Machine {
  return { id: `m-${name}`, name, site: 'dc1', macs: [], profiles: [], params: {}, facts: {}, bootenv: 'discovery', state: 'discovered', netboot: true, ...extra, ...T };
}
const GiB = 1024 ** 3;

export function fixture(): InventorySource {
  return {
    sites: [site('dc1', { ntp: 'ntp.dc1', bmc_password: SECRET }), site('Zürich-2', { ntp: 'ntp.zh' })],
    profiles: [
      profile('global', { dns: '9.9.9.9', tier: 'global', bmc_password: SECRET }),
      profile('web', { tier: 'web', port: 80, root_hash: SECRET }),
      profile('db', { tier: 'db', port: 5432 }),
    ],
    params: [def('bmc_password', { secret: true }), def('root_hash', { secret: true }), def('tier', { default: 'default-tier' }), def('color', { default: 'blue' })],
    machines: [
      machine('web-1', { address: '10.0.0.1', rack: 'R-1', profiles: ['web', 'db'], macs: ['52:54:00:00:00:01'], state: 'deployed', bootenv: 'debian-12', facts: { cpu: { model: 'Xeon Gold 6338' }, memory: { totalBytes: 512 * GiB } }, params: { bmc_password: SECRET, role: 'frontend' } }),
      machine('db-1', { address: '10.0.0.2', rack: 'R-1', profiles: ['db'], state: 'deployed', bootenv: 'debian-12', facts: { cpu: { model: 'EPYC 7763' }, memory: { totalBytes: 128 * GiB } }, params: { role: 'database', tier: 'machine-tier' } }),
      machine('new-1', { site: 'Zürich-2', facts: { cpu: { model: 'Xeon Gold 6338' } } }),
    ],
    rules: [
      { id: 'r1', name: 'cpu', kind: 'keyed', key: 'facts.cpu.model', ...T },
      { id: 'r2', name: 'role', kind: 'keyed', key: 'params.role', prefix: '', ...T },
      { id: 'r3', name: 'bigmem', kind: 'condition', group: 'Big Memory', when: { path: 'facts.memory.totalBytes', op: 'gte', value: 256 * GiB }, ...T },
      { id: 'r4', name: 'leak1', kind: 'keyed', key: 'params.bmc_password', ...T },
      { id: 'r5', name: 'leak2', kind: 'condition', group: 'has_secret', when: { path: 'params.bmc_password', op: 'exists' }, ...T },
    ] as GroupRule[],
    services: [
      {
        id: 'svc1',
        name: 'etcd',
        tags: [],
        modifyIndex: 3,
        members: [
          { id: 'a', machine: 'web-1', address: '10.0.0.1', port: 2379, tags: [], meta: {}, status: 'passing', statusSince: T.createdAt, registeredAt: T.createdAt },
          { id: 'b', machine: 'db-1', address: '10.0.0.2', port: 2379, tags: [], meta: {}, status: 'critical', statusSince: T.createdAt, registeredAt: T.createdAt },
        ],
        ...T,
      },
    ] as Service[],
  };
}

/** Facts of a shape the schema refuses today (unknown keys), as a store written before issue 11 may hold. */
function legacyFacts(f: Record<string, unknown>): Machine['facts'] {
  return f as Machine['facts'];
}

/** Machines and rules that exercise the serialiser: overrides, reserved names, escaping, odd shapes. */
export function edgeCases(): InventorySource {
  const src = fixture();
  src.sites = [...src.sites, site('dc-1'), site('dc_1', { quote: 'say "hi"\n', emoji: '😀 \u2028 \\' })];
  src.profiles = [...src.profiles, profile('jump', { ansible_host: 'jump.example' }), profile('Ünïcode prof', { nested: { a: [1, 2, { b: null }] } })];
  src.machines = [
    ...src.machines,
    machine('odd-1', { address: '10.0.0.9', params: { ansible_host: 'bastion.example', tier: 'own', underlay_site: 'spoof', extra: [1, { a: 'é' }] } }),
    machine('odd-2', { params: {} }),
    machine('odd-3', { address: '10.0.0.10', profiles: ['jump'] }),
    machine('x-1', { site: 'dc-1', rack: 'r1', profiles: ['web', 'web'], params: { port: 8080 } }),
    machine('x-2', { site: 'dc_1', rack: 'r1', profiles: ['Ünïcode prof', 'missing-profile'], facts: legacyFacts({ tags: ['a', 'b', ''], labels: { env: 'prod', n: 3, deep: { x: 1 } }, weird: 'quote " back \\ nl \n 😀' }) }),
    machine('ünï "q"', { site: 'nowhere', address: 'fe80::1', state: 'failed', facts: { cpu: { model: '' }, memory: { totalBytes: '300000000000' as unknown as number } } }),
  ];
  src.rules = [
    ...src.rules,
    { id: 'r6', name: 'tags', kind: 'keyed', key: 'facts.tags', ...T },
    { id: 'r7', name: 'labels', kind: 'keyed', key: 'facts.labels', prefix: 'lbl', ...T },
    { id: 'r8', name: 'in', kind: 'condition', group: 'in_dc', when: [{ path: 'site', op: 'in', value: ['dc1', 'dc-1'] }, { path: 'rack', op: 'exists', value: false }], ...T },
    { id: 'r9', name: 'contains', kind: 'condition', group: 'contains_quote', when: { path: 'facts.weird', op: 'contains', value: '"' }, ...T },
    { id: 'r10', name: 'ne', kind: 'condition', group: 'not_new', when: { path: 'state', op: 'ne', value: 'discovered' }, ...T },
    { id: 'r11', name: 'all', kind: 'condition', group: 'all', when: { path: 'site', op: 'exists' }, ...T }, // clashes with the reserved name
  ] as GroupRule[];
  src.services = [
    ...src.services,
    { id: 'svc2', name: 'empty', tags: [], modifyIndex: 4, members: [], ...T },
    {
      id: 'svc3',
      name: 'ghost',
      tags: [],
      modifyIndex: 5,
      members: [
        { id: 'g', machine: 'gone-1', address: '10.9.9.9', port: 1, tags: [], meta: {}, status: 'passing', statusSince: T.createdAt, registeredAt: T.createdAt },
        { id: 'h', address: '10.9.9.10', port: 2, tags: [], meta: {}, status: 'passing', statusSince: T.createdAt, registeredAt: T.createdAt },
        { id: 'i', machine: 'x-1', address: '10.9.9.11', port: 3, tags: [], meta: {}, status: 'passing', statusSince: T.createdAt, registeredAt: T.createdAt },
      ],
      ...T,
    },
  ] as Service[];
  return src;
}

/**
 * The inputs of the renderer's golden-output test: the benchmark fleet at 1,000 hosts and the edge cases,
 * each in several views. `testdata/inventory-golden.json.gz` was recorded (now: `UNDERLAY_RECORD_GOLDEN=1`,
 * see render-golden.test.ts) from the renderer as it was before the single-pass rewrite; the test checks today's output against it.
 */
export function goldenCases(fleet: (n: number) => InventorySource): { name: string; src: InventorySource; opts: RenderOptions }[] {
  const big = fleet(1000);
  const edge = edgeCases();
  const empty: InventorySource = { ...fixture(), machines: [] };
  return [
    { name: 'fleet-1k', src: big, opts: {} },
    { name: 'fleet-1k prefix', src: big, opts: { prefix: 'ul' } },
    { name: 'fleet-1k site', src: big, opts: { site: 'site-3' } },
    { name: 'fleet-1k group big_memory', src: big, opts: { group: 'big_memory' } },
    { name: 'fleet-1k group role_web', src: big, opts: { group: 'role_web' } },
    { name: 'edge', src: edge, opts: {} },
    { name: 'edge prefix', src: edge, opts: { prefix: 'UL-' } },
    { name: 'edge site', src: edge, opts: { site: 'dc_1' } },
    { name: 'edge group profile_db', src: edge, opts: { group: 'profile_db' } },
    { name: 'edge group all', src: edge, opts: { group: 'all' } },
    { name: 'edge group in_dc', src: edge, opts: { group: 'in_dc' } },
    { name: 'no machines', src: empty, opts: {} },
  ];
}
