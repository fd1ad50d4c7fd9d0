import { afterEach, describe, expect, it } from 'vitest';
import { DeployRequest } from '../../shared/api/lifecycle.js';
import { captureLogger } from '../../shared/log/capture-logger.test-support.js';
import { deploy, release } from './actions.js';
import { bestAddress } from './addresses.js';
import { lifecycleBench, MAC } from './lifecycle.test-support.js';
import { eventsOf } from './machine-events.js';
import { onDiscovery, onInstallDone, onLease, onMachineOs } from './reports.js';

let b: Awaited<ReturnType<typeof lifecycleBench>>;
afterEach(async () => {
  await b?.close();
});

const osReport = (over: Record<string, unknown> = {}) => ({
  machineId: 'm-1',
  os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
  kernel: '6.1.0-18-amd64',
  hostname: 'web-1',
  addresses: [
    { interface: 'lo', address: '127.0.0.1' },
    { interface: 'ens3', mac: MAC, address: '198.18.0.42/24' },
    { interface: 'ens3', mac: MAC, address: 'fe80::5054:ff:fe12:1' },
  ],
  ...over,
});

async function deploying() {
  b = await lifecycleBench();
  await b.machine();
  const r = await deploy(b.lc, 'm-1', DeployRequest.parse({ image: 'debian-12' }), {});
  return r.task!;
}

describe('what the agent reports drives the lifecycle', () => {
  it('image-deploy failing → failed with the task reason; a redeploy then works', async () => {
    const task = await deploying();
    await b.report(task.id, 'running');
    expect(b.get().state).toBe('deploying');
    await b.report(task.id, 'failed', 'sha256 mismatch');
    expect(b.get()).toMatchObject({ state: 'failed', stateReason: 'image-deploy task failed: sha256 mismatch' });
    expect(eventsOf(b.store, 'm-1').at(-1)).toMatchObject({ from: 'deploying', to: 'failed', cause: { kind: 'task', taskId: task.id, taskKind: 'image-deploy', taskState: 'failed' }, reason: 'image-deploy task failed: sha256 mismatch' });
    const again = await deploy(b.lc, 'm-1', DeployRequest.parse({ image: 'debian-12' }), {});
    expect(b.get()).toMatchObject({ state: 'deploying', deployment: { taskId: again.task!.id } });
    expect(b.get().stateReason).toMatch(/^deploying image debian-12/);
  });

  it('image-deploy succeeding keeps deploying; the machine-os event then → deployed with OS facts and addresses', async () => {
    const task = await deploying();
    await b.report(task.id, 'succeeded');
    expect(b.get()).toMatchObject({ state: 'deploying', netboot: false, stateReason: 'image written and verified; waiting for the installed OS to report' });
    await onMachineOs(b.lc, b.agents.a1, b.ev('machine-os', osReport()));
    const m = b.get();
    expect(m).toMatchObject({ state: 'deployed', netboot: false, os: { id: 'debian', versionId: '12', kernel: '6.1.0-18-amd64', hostname: 'web-1' } });
    expect(m.addresses!.filter((a) => a.source === 'os').map((a) => a.address)).toEqual(['127.0.0.1', '198.18.0.42', 'fe80::5054:ff:fe12:1']);
    expect(bestAddress(m)).toBe('198.18.0.42');
    expect(eventsOf(b.store, 'm-1').at(-1)).toMatchObject({ from: 'deploying', to: 'deployed', cause: { kind: 'agent-event', event: 'machine-os', agent: 'agent-1' } });
    // A deployed machine's next report refreshes its addresses, without a transition.
    await onMachineOs(b.lc, b.agents.a1, b.ev('machine-os', osReport({ addresses: [{ interface: 'ens3', address: '198.18.0.77' }] })));
    expect(bestAddress(b.get())).toBe('198.18.0.77');
    expect(eventsOf(b.store, 'm-1')).toHaveLength(2);
  });

  it('a machine-os report before the task’s success, naming the deploy task, waits for it; then → deployed', async () => {
    const task = await deploying();
    await onMachineOs(b.lc, b.agents.a1, b.ev('machine-os', osReport({ deployTaskId: task.id })));
    expect(b.get().state).toBe('deploying');
    await b.report(task.id, 'succeeded');
    expect(b.get()).toMatchObject({ state: 'deployed', netboot: false, os: { deployTaskId: task.id } });
    expect(eventsOf(b.store, 'm-1').at(-1)).toMatchObject({ to: 'deployed', cause: { kind: 'task', taskState: 'succeeded' } });
  });

  it('a half-written disk is never deployed: an OS report while the deploy task has not succeeded (an older OS) changes nothing', async () => {
    const task = await deploying();
    await b.report(task.id, 'running');
    await onMachineOs(b.lc, b.agents.a1, b.ev('machine-os', osReport()));
    await onMachineOs(b.lc, b.agents.a1, b.ev('machine-os', osReport({ deployTaskId: 'some-other-task' })));
    expect(b.get().state).toBe('deploying');
    await b.report(task.id, 'failed', 'write error');
    expect(b.get().state).toBe('failed');
  });

  it('malformed machine-os events are logged by path only (never their values) and change nothing; another site’s agent is ignored', async () => {
    const { logger, lines } = captureLogger();
    b = await lifecycleBench({ logger });
    await b.machine({ state: 'deployed' });
    const before = b.get();
    for (const bad of [null, 'x', { machineId: 'm-1', os: { id: 'SECRET-VALUE-1'.repeat(10) }, kernel: 'k', addresses: [] }, { ...osReport(), extra: 'SECRET-VALUE-2' }, { ...osReport(), addresses: Array(100).fill({ interface: 'e', address: '1.2.3.4' }) }]) {
      await onMachineOs(b.lc, b.agents.a1, b.ev('machine-os', bad));
    }
    await onMachineOs(b.lc, b.agents.a2, b.ev('machine-os', osReport({ addresses: [{ interface: 'x', address: '10.6.6.6' }] })));
    expect(b.get()).toEqual(before);
    const text = JSON.stringify(lines);
    expect(lines.filter((l) => l.msg === 'malformed machine-os event; ignored')).toHaveLength(5);
    expect(text).not.toContain('SECRET-VALUE');
    expect(text).not.toContain('10.6.6.6');
  });

  it('expiry or cancel of the deploy task → failed with the reason', async () => {
    const task = await deploying();
    await b.tasks.cancel(task.id);
    expect(b.get()).toMatchObject({ state: 'failed', stateReason: 'image-deploy task cancelled: cancelled by operator' });
    const again = await deploy(b.lc, 'm-1', DeployRequest.parse({ image: 'debian-12' }), {});
    await b.store.put('tasks', { ...b.tasks.get(again.task!.id)!, expiresAt: new Date(Date.now() - 1).toISOString() });
    await b.tasks.pendingFor('agent-1');
    expect(b.get()).toMatchObject({ state: 'failed', stateReason: 'image-deploy task expired: expired before delivery' });
  });

  it('a finished task of an older action does not touch the machine', async () => {
    const first = await deploying();
    await b.tasks.cancel(first.id); // → failed
    const second = await deploy(b.lc, 'm-1', DeployRequest.parse({ image: 'debian-12' }), {});
    await b.store.put('machines', { ...b.get(), deployment: { ...b.get().deployment!, taskId: second.task!.id } });
    await b.report(first.id, 'failed', 'late'); // post-terminal: history only, no announcement
    expect(b.get().state).toBe('deploying');
  });

  it('release succeeding stays releasing; the next discovery report → ready (also when discovery came first)', async () => {
    b = await lifecycleBench();
    await b.machine({ state: 'deployed' });
    const r = await release(b.lc, 'm-1', { wipe: 'quick' }, {});
    await b.report(r.task!.id, 'succeeded');
    expect(b.get().state).toBe('releasing');
    await onDiscovery(b.lc, b.agents.a1, b.ev('discovery', { machineId: 'm-1', mac: MAC, facts: { cpu: { cores: 2 } } }));
    expect(b.get().state).toBe('ready');
    expect(eventsOf(b.store, 'm-1').map((e) => `${e.from}→${e.to}:${e.cause.kind}`)).toEqual(['deployed→releasing:action', 'releasing→ready:agent-event']);

    await b.machine({ id: 'm-2', name: 'node-2', macs: ['52:54:00:12:00:02'], state: 'deployed' });
    const r2 = await release(b.lc, 'm-2', { wipe: 'quick' }, {});
    await onDiscovery(b.lc, b.agents.a1, b.ev('discovery', { machineId: 'm-2', mac: '52:54:00:12:00:02', facts: {} }));
    expect(b.get('m-2').state).toBe('releasing'); // the wipe has not reported yet
    await b.report(r2.task!.id, 'succeeded');
    expect(b.get('m-2').state).toBe('ready');
  });

  it('release failing → failed with the reason', async () => {
    b = await lifecycleBench();
    await b.machine({ state: 'deployed' });
    const r = await release(b.lc, 'm-1', { wipe: 'secure' }, {});
    await b.report(r.task!.id, 'failed', 'blkdiscard: EIO');
    expect(b.get()).toMatchObject({ state: 'failed', stateReason: 'release task failed: blkdiscard: EIO' });
  });

  it('discovery: a discovered machine with facts → ready, its interfaces’ addresses recorded (it gets an ansible_host); without facts it stays discovered', async () => {
    b = await lifecycleBench();
    await b.machine({ state: 'discovered' });
    await onDiscovery(b.lc, b.agents.a1, b.ev('discovery', { machineId: 'm-1', mac: MAC, facts: {} }));
    expect(b.get().state).toBe('discovered');
    await b.store.put('machines', { ...b.get(), facts: { nics: [{ name: 'eno1', mac: MAC, addresses: ['198.18.0.23/24', 'fe80::1/64'] }] } });
    await onDiscovery(b.lc, b.agents.a1, b.ev('discovery', { machineId: 'm-1', mac: MAC, facts: { nics: [{ name: 'eno1', mac: MAC, addresses: ['198.18.0.23/24', 'fe80::1/64'] }] } }));
    const m = b.get();
    expect(m.state).toBe('ready');
    expect(m.addresses).toMatchObject([{ source: 'discovery', address: '198.18.0.23', interface: 'eno1', mac: MAC }, { source: 'discovery', address: 'fe80::1' }]);
    expect(bestAddress(m)).toBe('198.18.0.23');
    expect(eventsOf(b.store, 'm-1')).toMatchObject([{ from: 'discovered', to: 'ready', cause: { kind: 'agent-event', event: 'discovery' } }]);
  });

  it('leases: the boot address is recorded on lease and dropped on release; it beats discovery, the OS beats it', async () => {
    b = await lifecycleBench();
    await b.machine({ addresses: [{ source: 'discovery', address: '198.18.0.9', at: 'x' }] });
    const lease = (type: string, address: string) => b.ev('lease', { type, mac: MAC.toUpperCase(), address, subnet: '198.18.0.0/24', expiresAt: new Date(Date.now() + 3600_000).toISOString() });
    await onLease(b.lc, b.agents.a1, lease('lease', '198.18.0.50'));
    expect(bestAddress(b.get())).toBe('198.18.0.50');
    await onLease(b.lc, b.agents.a2, lease('lease', '198.18.0.66')); // another site's agent: ignored
    expect(b.get().addresses!.map((a) => a.address)).toEqual(['198.18.0.9', '198.18.0.50']);
    await b.store.put('machines', { ...b.get(), addresses: [...b.get().addresses!, { source: 'os', address: '198.18.5.5', at: 'x' }] });
    expect(bestAddress(b.get())).toBe('198.18.5.5');
    await onLease(b.lc, b.agents.a1, lease('release', '198.18.0.50'));
    expect(b.get().addresses!.map((a) => a.address)).toEqual(['198.18.0.9', '198.18.5.5']);
  });

  it('install-done (installer boot environments) → deployed', async () => {
    b = await lifecycleBench();
    await b.machine({ state: 'ready' });
    await onInstallDone(b.lc, b.agents.a1, b.ev('install-done', { machineId: 'm-1' }));
    expect(b.get().state).toBe('deployed');
    await onInstallDone(b.lc, b.agents.a1, b.ev('install-done', { machineId: 'm-1' })); // already deployed: no error, no event
    expect(eventsOf(b.store, 'm-1')).toHaveLength(1);
  });
});

describe('overdue action tasks', () => {
  it('a deploy task that expired while its agent was away fails the machine at the next sweep; a live one does not', async () => {
    const { expireOverdueActionTasks } = await import('./overdue.js');
    const task = await deploying();
    expect(await expireOverdueActionTasks(b.lc)).toBe(0);
    expect(b.get().state).toBe('deploying');
    await b.store.put('tasks', { ...b.tasks.get(task.id)!, expiresAt: new Date(Date.now() - 1000).toISOString() });
    expect(await expireOverdueActionTasks(b.lc)).toBe(1);
    expect(b.tasks.get(task.id)!.state).toBe('expired');
    expect(b.get()).toMatchObject({ state: 'failed', stateReason: 'image-deploy task expired: expired before delivery' });
  });
});
