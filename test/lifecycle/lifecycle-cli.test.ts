import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliProgram, type CliResult } from '../support/cli-program.js';
import { startInProcessCentral, type InProcessCentral, type SimAgent } from '../central/in-process.js';
import { tempDir } from '../central/support.js';

/**
 * `underlay machines deploy|wait|events|release|rescue` (issue 12) against an in-process central: the
 * CLI's own program object, its output and exit codes, with the agent's side simulated on the link.
 */
const MAC = '52:54:00:c1:00:01';
const SHA = 'ef'.repeat(32);

let dir: string;
let central: InProcessCentral;
let agent: SimAgent;
let name: string;
let caFile: string;

function cli(...args: string[]): Promise<CliResult> {
  return runCliProgram({ url: central.url, token: central.adminToken, caFile }, args);
}

beforeAll(async () => {
  dir = tempDir('underlay-lifecycle-cli-');
  central = await startInProcessCentral({ dir });
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, central.ca);
  await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } });
  agent = await central.joinAgent('dc1');
  expect((await central.request('POST', '/api/v1/bootenvs', { body: { name: 'debian-cloud', os: { family: 'debian' }, kernel: { url: 'http://x/k' }, bootParams: '', templates: [] } })).status).toBe(201);
  await central.running.deps.store.put('artifacts', { id: SHA, sha256: SHA, size: 100, urls: [], name: 'debian-12', createdAt: new Date().toISOString(), image: { format: 'raw', rawSha256: SHA, rawSize: 104857600 } });
  await agent.event('discovery', { machineId: 'cli-1', mac: MAC, facts: { cpu: { cores: 1 } } });
  name = (await central.request('GET', '/api/v1/machines/cli-1')).json.name;
}, 60_000);
afterAll(async () => {
  await central?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('underlay machines lifecycle commands', () => {
  it('lists machines with their state, filtered by --state', async () => {
    const r = await cli('machines', 'list', '--state', 'ready', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).items.map((m: { name: string; state: string }) => `${m.name}:${m.state}`)).toEqual([`${name}:ready`]);
    expect(JSON.parse((await cli('machines', 'list', '--state', 'deployed', '-o', 'json')).stdout).items).toEqual([]);
  });

  let taskId: string;
  it('deploy sends image, disk and params; wait prints the state and the task’s progress, and exits 2 at the timeout', async () => {
    const r = await cli('machines', 'deploy', name, '--image', 'debian-12', '--disk', '/dev/vda', '--param', 'motd=hi', '--param', 'n=3', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res).toMatchObject({ machine: { state: 'deploying', params: { motd: 'hi', n: 3 } }, task: { kind: 'image-deploy' } });
    taskId = res.task.id;
    expect((await central.request('GET', `/api/v1/tasks/${taskId}`)).json.payload).toMatchObject({ disk: '/dev/vda', image: { name: 'debian-12' } });
    // The runner's progress as the deploy-runner part records it on the task (read, not built, here).
    const store = central.running.deps.store;
    await store.put('tasks', { ...store.get('tasks', taskId)!, progress: { bytes: 52428800, total: 104857600, rate: 10485760 } });
    const w = await cli('machines', 'wait', name, '--state', 'deployed', '--timeout', '300ms');
    expect(w.code).toBe(2);
    expect(w.stderr).toContain(`${name}: deploying`);
    expect(w.stderr).toContain('50.0 MiB of 100.0 MiB (50%), 10.0 MiB/s');
    expect(w.stderr).toContain(`timed out: ${name} is deploying, not deployed, after 300ms`);
  });

  it('wait exits 5 with the reason when the deploy fails; a redeploy then reaches deployed and wait exits 0', async () => {
    await agent.report(taskId, 'failed', 'disk too small');
    const f = await cli('machines', 'wait', name, '--state', 'deployed', '--timeout', '10s');
    expect(f.code).toBe(5);
    expect(f.stderr).toContain('failed: image-deploy task failed: disk too small');
    const again = await cli('machines', 'deploy', name, '--image', 'debian-12', '-o', 'table');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`^machine ${name}: deploying \\(task [0-9a-f-]+, image-deploy\\)`));
    const t2 = /task ([0-9a-f-]+)/.exec(again.stdout)![1]!;
    const waiting = cli('machines', 'wait', name, '--state', 'deployed', '--timeout', '30s', '-o', 'json');
    await agent.report(t2, 'succeeded');
    await agent.event('machine-os', { machineId: 'cli-1', os: { id: 'debian' }, kernel: '6.1', addresses: [{ interface: 'ens3', address: '198.18.0.90' }] });
    const w = await waiting;
    expect(w.code, w.stderr).toBe(0);
    expect(JSON.parse(w.stdout)).toMatchObject({ name, state: 'deployed' });
  });

  it('events prints the history; release and rescue; an illegal action exits 5 with the 409 message', async () => {
    const e = await cli('machines', 'events', name, '-o', 'json');
    expect(e.code).toBe(0);
    expect(JSON.parse(e.stdout).items.map((x: { to: string }) => x.to)).toEqual(['ready', 'deploying', 'failed', 'deploying', 'deployed']);
    const table = await cli('machines', 'events', name, '-o', 'table');
    const rows = table.stdout.replace(/\u001b\[[0-9;]*m/g, '').split('\n');
    expect(rows.some((l) => /deploying\W+failed\W+task [0-9a-f-]+ \(image-deploy\) failed\W+image-deploy task failed: disk too small/.test(l)), table.stdout).toBe(true);
    expect(rows.some((l) => /ready\W+deploying\W+deploy by token [0-9a-f]{16} \(task/.test(l)), table.stdout).toBe(true);
    const rel = await cli('machines', 'release', name, '--wipe', 'secure', '-o', 'table');
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stdout).toMatch(new RegExp(`^machine ${name}: releasing \\(task [0-9a-f-]+, release\\)`));
    const rescue = await cli('machines', 'rescue', name);
    expect(rescue.code).toBe(5);
    expect(rescue.stderr).toContain(`machine "${name}" is releasing: rescue needs a machine that is discovered or ready or deployed or failed`);
    const bad = await cli('machines', 'wait', name, '--state', 'installed');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--state must be one of');
  });
});
