import type { GroupRule } from '../../../shared/api/ansible-inventory.js';
import type { Machine, ParamDef, Profile, Site } from '../../../shared/api/resources.js';
import type { Service } from '../../../shared/api/services.js';

/** The inventory benchmark's synthetic fleet (also the renderer's golden-output test input). */

const T = { createdAt: '2024-01-01T00:00:00.000Z', updatedAt: '2024-01-01T00:00:00.000Z' };
const GiB = 1024 ** 3;
const CPUS = ['Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz', 'AMD EPYC 7763 64-Core Processor', 'Intel(R) Xeon(R) Platinum 8480+', 'Ampere Altra Q80-30'];

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** The synthetic fleet: 20 sites × 40 racks, 12 profiles, 30 param defs (3 secret), 4 group rules, 6 services. */
export function fleet(n: number) {
  const sites: Site[] = Array.from({ length: 20 }, (_, i) => ({ id: `site-${i}`, name: `site-${i}`, params: { ntp: `ntp${i}.example`, dns: `10.${i}.0.53`, bmc_password: 'secret' }, ...T }));
  const profiles: Profile[] = [
    { id: 'p-global', name: 'global', params: { timezone: 'UTC', tier: 'default' }, ...T },
    ...Array.from({ length: 11 }, (_, i) => ({ id: `p-${i}`, name: `profile-${i}`, params: { tier: `tier-${i}`, [`feature_${i}`]: true, root_hash: '$6$x' }, ...T })),
  ];
  const params: ParamDef[] = Array.from({ length: 30 }, (_, i) => ({ id: `d-${i}`, name: `param_${i}`, schema: {}, secret: false, ...(i % 3 === 0 ? { default: `default-${i}` } : {}), ...T }));
  params.push({ id: 'd-bmc', name: 'bmc_password', schema: {}, secret: true, ...T }, { id: 'd-root', name: 'root_hash', schema: {}, secret: true, ...T }, { id: 'd-k', name: 'api_key', schema: {}, secret: true, ...T });
  const machines: Machine[] = [];
  for (let i = 0; i < n; i++) {
    const site = i % 20;
    const name = `node-${String(i).padStart(6, '0')}`;
    machines.push({
      id: `m-${i}`,
      name,
      site: `site-${site}`,
      rack: `r${site}-${(i >> 5) % 40}`,
      macs: [`52:54:${hex((i >> 24) & 255, 2)}:${hex((i >> 16) & 255, 2)}:${hex((i >> 8) & 255, 2)}:${hex(i & 255, 2)}`],
      address: `10.${site}.${(i >> 8) & 255}.${i & 255}`,
      profiles: [`profile-${i % 11}`, `profile-${(i + 3) % 11}`],
      params: { role: ['web', 'db', 'cache', 'compute'][i % 4]!, index: i, api_key: 'secret' },
      facts: {
        system: { uuid: `00000000-0000-4000-8000-${hex(i, 12)}`, serial: `SN${i}`, vendor: 'Dell Inc.', product: 'PowerEdge R650' },
        firmware: i % 5 === 0 ? 'bios' : 'uefi',
        cpu: { model: CPUS[i % CPUS.length], sockets: 2, cores: 64, threads: 128 },
        memory: { totalBytes: (i % 3 === 0 ? 512 : 128) * GiB },
        disks: [
          { name: 'nvme0n1', sizeBytes: 1920383410176, model: 'SAMSUNG MZQL21T9HCJR', serial: `S${i}A`, rotational: false },
          { name: 'nvme1n1', sizeBytes: 1920383410176, model: 'SAMSUNG MZQL21T9HCJR', serial: `S${i}B`, rotational: false },
        ],
        nics: [
          { name: 'eno1', mac: `52:54:${hex((i >> 24) & 255, 2)}:${hex((i >> 16) & 255, 2)}:${hex((i >> 8) & 255, 2)}:${hex(i & 255, 2)}`, driver: 'ice', link: true, speedMbps: 25000 },
          { name: 'eno2', mac: `52:55:${hex((i >> 24) & 255, 2)}:${hex((i >> 16) & 255, 2)}:${hex((i >> 8) & 255, 2)}:${hex(i & 255, 2)}`, driver: 'ice', link: false, speedMbps: 0 },
        ],
        bmc: { address: `10.250.${(i >> 8) & 255}.${i & 255}` },
      },
      bootenv: i % 10 === 0 ? 'discovery' : 'local',
      state: i % 10 === 0 ? 'ready' : 'deployed',
      netboot: false,
      ...T,
    });
  }
  const rules: GroupRule[] = [
    { id: 'r1', name: 'cpu', kind: 'keyed', key: 'facts.cpu.model', ...T },
    { id: 'r2', name: 'role', kind: 'keyed', key: 'params.role', ...T },
    { id: 'r3', name: 'bigmem', kind: 'condition', group: 'big_memory', when: { path: 'facts.memory.totalBytes', op: 'gte', value: 256 * GiB }, ...T },
    { id: 'r4', name: 'bios', kind: 'condition', group: 'legacy_bios', when: { path: 'facts.firmware', op: 'eq', value: 'bios' }, ...T },
  ];
  const services: Service[] = ['etcd', 'consul', 'vault', 'kafka', 'postgres', 'web'].map((s, k) => ({
    id: `svc-${s}`,
    name: s,
    tags: [],
    modifyIndex: k + 1,
    members: Array.from({ length: s === 'web' ? Math.max(3, Math.floor(n / 100)) : 3 }, (_, j) => {
      const m = machines[(k * 7919 + j * 31) % n]!;
      return { id: `${m.name}-${s}`, machine: m.name, address: m.address!, port: 2379 + k, tags: [], meta: {}, status: j % 5 === 4 ? ('critical' as const) : ('passing' as const), statusSince: T.createdAt, registeredAt: T.createdAt };
    }),
    ...T,
  }));
  return { sites, profiles, params, machines, rules, services };
}
