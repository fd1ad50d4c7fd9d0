import { join } from 'node:path';
import { expect } from 'vitest';
import { makeCsr } from '../../shared/pki/csr.js';
import { REPO, runProcess, type CentralProcess, type CliResult } from '../central/support.js';

/** Shared by the Ansible e2e suites: a small fleet across sites, profiles, services and group rules. */

export const SCRIPT = join(REPO, 'scripts/ansible/underlay-inventory');
export const SECRET = 'S3cret-BMC-pa55word';
export const SECRET_HASH = '$6$rounds=4096$leakcheck$do-not-show';
const GiB = 1024 ** 3;

async function must(central: CentralProcess, method: string, path: string, body?: unknown): Promise<any> {
  const r = await central.request(method, path, body === undefined ? {} : { body });
  expect(r.status, `${method} ${path}: ${r.text}`).toBeLessThan(300);
  return r.json;
}

export async function seedFleet(central: CentralProcess): Promise<void> {
  // The params start non-secret, get clear values, and are then declared secret: that seals the values
  // (to the agent joined below), and the inventory must hide them by definition alone.
  await must(central, 'POST', '/api/v1/params', { name: 'console_password', schema: { type: 'string' } });
  await must(central, 'POST', '/api/v1/params', { name: 'root_hash' });
  await must(central, 'POST', '/api/v1/params', { name: 'color', default: 'blue' });
  await must(central, 'POST', '/api/v1/sites', { name: 'dc1', params: { ntp: 'ntp.dc1.example', console_password: SECRET } });
  await must(central, 'POST', '/api/v1/sites', { name: 'dc-2', params: { ntp: 'ntp.dc2.example' } });
  await must(central, 'POST', '/api/v1/sites', { name: 'dc_2', params: {} }); // collides with dc-2 once sanitised
  await must(central, 'POST', '/api/v1/profiles', { name: 'global', params: { dns: '9.9.9.9', tier: 'global-tier', root_hash: SECRET_HASH } });
  await must(central, 'POST', '/api/v1/profiles', { name: 'web', params: { tier: 'web-tier', http_port: 8080 } });
  await must(central, 'POST', '/api/v1/profiles', { name: 'etcd-node', params: { etcd_data: '/var/lib/etcd', root_hash: SECRET_HASH } });
  const machines = [
    { name: 'web-1', site: 'dc1', rack: 'R.1', address: '198.18.0.11', profiles: ['web'], bootenv: 'local', params: { role: 'frontend', console_password: SECRET }, facts: { cpu: { model: 'Xeon® Gold 6338' }, memory: { totalBytes: 512 * GiB }, nics: [{ name: 'eno1', speedMbps: 10000 }] } },
    { name: 'web-2', site: 'dc1', rack: 'R.1', address: '198.18.0.12', profiles: ['web'], bootenv: 'local', params: { role: 'frontend' }, facts: { cpu: { model: 'EPYC 7763' }, memory: { totalBytes: 128 * GiB }, nics: [{ name: 'eno1', speedMbps: 25000 }] } },
    { name: 'etcd-1', site: 'dc1', rack: 'R-2', address: '198.18.0.21', profiles: ['etcd-node'], bootenv: 'local', params: { role: 'control' }, facts: { cpu: { model: 'EPYC 7763' }, memory: { totalBytes: 256 * GiB } } },
    { name: 'etcd-2', site: 'dc-2', address: '198.18.1.22', profiles: ['etcd-node', 'web'], bootenv: 'local', params: { role: 'control' }, facts: { cpu: { model: 'EPYC 7763' }, memory: { totalBytes: 256 * GiB } } },
    { name: 'etcd-3', site: 'dc-2', address: '198.18.1.23', profiles: ['etcd-node'], bootenv: 'local', params: { role: 'control' }, facts: {} },
    { name: 'new-1', site: 'dc_2', facts: { cpu: { model: 'Xeon® Gold 6338' } } },
  ];
  for (const m of machines) await must(central, 'POST', '/api/v1/machines', m);
  await must(central, 'POST', '/api/v1/group-rules', { name: 'cpu', kind: 'keyed', key: 'facts.cpu.model' });
  await must(central, 'POST', '/api/v1/group-rules', { name: 'speed', kind: 'keyed', key: 'facts.nics.0.speedMbps', prefix: '' });
  await must(central, 'POST', '/api/v1/group-rules', { name: 'role', kind: 'keyed', key: 'params.role', prefix: 'role' });
  await must(central, 'POST', '/api/v1/group-rules', { name: 'bigmem', kind: 'condition', group: 'Größe ≥ 256 GiB', when: { path: 'facts.memory.totalBytes', op: 'gte', value: 256 * GiB } });
  await must(central, 'POST', '/api/v1/group-rules', { name: 'leak-keyed', kind: 'keyed', key: 'params.console_password' });
  await must(central, 'POST', '/api/v1/group-rules', { name: 'leak-cond', kind: 'condition', group: 'has_bmc_secret', when: { path: 'params.console_password', op: 'eq', value: SECRET } });
  for (const [i, m] of ['etcd-1', 'etcd-2', 'etcd-3'].entries()) {
    await must(central, 'POST', '/api/v1/services/etcd/members', { machine: m, port: 2379, status: i < 2 ? 'passing' : 'critical', tags: ['peer'] });
  }
  await must(central, 'POST', '/api/v1/services/http/members', { machine: 'web-1', port: 8080, status: 'passing' });
  // Marking a param secret seals its existing values in the same write (issue 11), so the sites holding
  // them need an agent to seal to: one is joined at dc1 (profiles seal to every agent).
  const join = await must(central, 'POST', '/api/v1/tokens', { role: 'agent-join', site: 'dc1' });
  const { csrPem } = makeCsr('agent-candidate:fleet');
  const bearer = /^ulj1\.(ul_[^.]+)\./.exec(join.token)![1];
  const joined = await central.request('POST', '/api/v1/agents/join', { token: bearer, body: { csr: csrPem, sealPublicKey: Buffer.alloc(32, 7).toString('base64'), name: 'fleet-agent', agentVersion: 'test' } });
  expect(joined.status, joined.text).toBe(201);
  await must(central, 'PATCH', '/api/v1/params/console_password', { secret: true });
  await must(central, 'PATCH', '/api/v1/params/root_hash', { secret: true });
}

export type Run = CliResult;

/** Runs a real tool (ansible-inventory, ansible-playbook) with the given environment. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd = REPO): Promise<Run> {
  return runProcess(cmd, args, { cwd, env });
}

/** Environment for Ansible and the inventory script: connection to the central, Ansible state in `home`. */
export function ansibleEnv(central: CentralProcess, home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('UNDERLAY_') && !k.startsWith('ANSIBLE_')) env[k] = v;
  return {
    ...env,
    HOME: home,
    ANSIBLE_LOCAL_TEMP: join(home, 'ansible-tmp'),
    ANSIBLE_HOME: join(home, 'ansible-home'),
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_RETRY_FILES_ENABLED: 'False',
    ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
    UNDERLAY_URL: central.url,
    UNDERLAY_TOKEN: central.token,
    UNDERLAY_CA: central.caPath,
    UNDERLAY_INVENTORY_CACHE: 'off',
    UNDERLAY_LOG_LEVEL: 'warn',
    ...extra,
  };
}
