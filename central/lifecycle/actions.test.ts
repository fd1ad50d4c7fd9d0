import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeployRequest } from '../../shared/api/lifecycle.js';
import { ConflictError, InvalidError } from '../../shared/errors/domain-errors.js';
import { deploy, release, rescue } from './actions.js';
import { lifecycleBench, SHA_A, SHA_RAW } from './lifecycle.test-support.js';
import { eventsOf } from './machine-events.js';

let b: Awaited<ReturnType<typeof lifecycleBench>>;
beforeEach(async () => {
  b = await lifecycleBench();
});
afterEach(async () => {
  await b.close();
});

const req = (over: Record<string, unknown> = {}) => DeployRequest.parse({ image: 'debian-12', ...over });

describe('deploy', () => {
  it('signs an image-deploy task with the resolved image, merges params, sets bootenv and netboot, and moves ready → deploying with an event', async () => {
    await b.machine({ params: { keep: 1, role: 'old' }, netboot: false });
    const r = await deploy(b.lc, 'm-1', req({ disk: '/dev/vda', params: { role: 'web' } }), { tokenId: 'tok-1' });
    expect(r.task).toMatchObject({ kind: 'image-deploy', machine: 'm-1', agent: 'agent-1', state: 'queued' });
    expect(r.task!.payload).toEqual({ image: { name: 'debian-12', sha256: SHA_A, size: 1000, format: 'zstd', rawSha256: SHA_RAW, rawSize: 4096 }, config: 'cloud-init', disk: '/dev/vda' });
    const m = b.get();
    expect(m).toMatchObject({ state: 'deploying', bootenv: 'debian-cloud', netboot: true, params: { keep: 1, role: 'web' }, deployment: { action: 'deploy', taskId: r.task!.id, image: 'debian-12', config: 'cloud-init', disk: '/dev/vda' } });
    expect(eventsOf(b.store, 'm-1')).toMatchObject([{ seq: 1, from: 'ready', to: 'deploying', cause: { kind: 'action', action: 'deploy', tokenId: 'tok-1', taskId: r.task!.id } }]);
  });

  it('refuses an unknown image (400) and a machine that is not ready or failed (409), changing nothing and signing nothing', async () => {
    await b.machine();
    await expect(deploy(b.lc, 'm-1', req({ image: 'nope' }), {})).rejects.toThrow(InvalidError);
    await expect(deploy(b.lc, 'm-1', req({ image: 'nope' }), {})).rejects.toThrow(/image "nope" is not known/);
    for (const state of ['discovered', 'deploying', 'deployed', 'releasing', 'rescue'] as const) {
      await b.machine({ state });
      const e = await deploy(b.lc, 'm-1', req(), {}).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ConflictError);
      expect((e as Error).message).toBe(`machine "node-1" is ${state}: deploy needs a machine that is ready or failed`);
    }
    expect(b.store.count('tasks')).toBe(0);
    expect(eventsOf(b.store, 'm-1')).toEqual([]);
  });

  it('refuses an unknown boot environment, an ignition deploy without one, and an artifact that is not an image', async () => {
    await b.machine();
    await expect(deploy(b.lc, 'm-1', req({ bootenv: 'missing' }), {})).rejects.toThrow(/boot environment "missing" does not exist/);
    await expect(deploy(b.lc, 'm-1', req({ config: 'ignition' }), {})).rejects.toThrow(/ignition deploy names the boot environment/);
    await b.store.put('artifacts', { id: 'c'.repeat(64), sha256: 'c'.repeat(64), size: 5, urls: [], name: 'kernel', createdAt: 'x' });
    await expect(deploy(b.lc, 'm-1', req({ image: 'kernel' }), {})).rejects.toThrow(/is not known/);
    await b.store.put('artifacts', { id: 'd'.repeat(64), sha256: 'd'.repeat(64), size: 5, urls: [], name: 'broken', createdAt: 'x', image: { format: 'tar' } });
    await expect(deploy(b.lc, 'm-1', req({ image: 'broken' }), {})).rejects.toThrow(/no valid image description/);
    expect(b.get().state).toBe('ready');
    expect(b.store.count('tasks')).toBe(0);
  });

  it('picks the newest artifact of that name', async () => {
    await b.machine();
    await b.store.put('artifacts', { id: 'e'.repeat(64), sha256: 'e'.repeat(64), size: 9, urls: [], name: 'debian-12', createdAt: '2999-01-01T00:00:00Z', image: { format: 'raw', rawSha256: 'e'.repeat(64), rawSize: 1024 } });
    const r = await deploy(b.lc, 'm-1', req(), {});
    expect((r.task!.payload as { image: { sha256: string } }).image.sha256).toBe('e'.repeat(64));
  });

  it('two deploys racing for one machine: one wins, the other gets its 409, one task signed', async () => {
    await b.machine();
    const results = await Promise.allSettled([deploy(b.lc, 'm-1', req(), {}), deploy(b.lc, 'm-1', req(), {})]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    expect(b.store.count('tasks')).toBe(1);
    expect(eventsOf(b.store, 'm-1')).toHaveLength(1);
  });

  it('a site without an agent refuses the deploy and leaves the machine ready', async () => {
    await b.store.put('agents', { ...b.agents.a1, revokedAt: 'now' });
    await b.machine();
    await expect(deploy(b.lc, 'm-1', req(), {})).rejects.toThrow(/no joined agent/);
    expect(b.get().state).toBe('ready');
  });
});

describe('release and rescue', () => {
  it('release: deployed → releasing with a release task; bootenv discovery, netboot on', async () => {
    await b.machine({ state: 'deployed', bootenv: 'debian-cloud', netboot: false });
    const r = await release(b.lc, 'm-1', { wipe: 'secure' }, { tokenId: 't' });
    expect(r.task).toMatchObject({ kind: 'release', payload: { wipe: 'secure' } });
    expect(b.get()).toMatchObject({ state: 'releasing', bootenv: 'discovery', netboot: true, deployment: { action: 'release', taskId: r.task!.id, wipe: 'secure' } });
    await expect(release(b.lc, 'm-1', { wipe: 'quick' }, {})).rejects.toThrow(/is releasing: release needs a machine that is deployed or failed or rescue/);
  });

  it('rescue: a deployed machine gets a reboot task; a ready one needs none; both end in rescue with bootenv discovery', async () => {
    await b.machine({ state: 'deployed', bootenv: 'debian-cloud', netboot: false });
    const r = await rescue(b.lc, 'm-1', {});
    expect(r.task).toMatchObject({ kind: 'reboot' });
    expect(b.get()).toMatchObject({ state: 'rescue', bootenv: 'discovery', netboot: true });
    await b.machine({ id: 'm-2', name: 'node-2', macs: ['52:54:00:12:00:02'], state: 'ready' });
    const r2 = await rescue(b.lc, 'm-2', {});
    expect(r2.task).toBeUndefined();
    expect(b.get('m-2').state).toBe('rescue');
    expect(b.store.count('tasks')).toBe(1);
    await expect(rescue(b.lc, 'm-2', {})).rejects.toThrow(ConflictError);
  });
});
