import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { DesiredState } from '../../shared/protocol/desired-state.js';
import { DesiredStateCache } from './desired-state-cache.js';

const MAC = '52:54:00:0f:0f:01';
const state = (netboot: boolean, bootenv: string, version: string) =>
  DesiredState.parse({
    version,
    generatedAt: new Date().toISOString(),
    site: { name: 'rack1', params: {} },
    machines: [{ id: 'm1', name: 'web-01', macs: [MAC], bootenv, state: 'deploying', netboot, profiles: [], params: {} }],
  });

describe('DesiredStateCache local overrides', () => {
  const dir = mkdtempSync(join(tmpdir(), 'underlay-dsc-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'desired-state.json');

  it('an override made while the central is away survives a restart (new instance on the same state dir)', async () => {
    const a = new DesiredStateCache(path, silentLogger);
    await a.replace(state(true, 'debian', 'v1'));
    expect(await a.override('m1', { netboot: false, bootenv: 'local' })).toBe(true);
    expect(await a.override('no-such-machine', { netboot: false })).toBe(false);
    // "Restart": the central is still unreachable, so nothing but the disk tells the new instance.
    const b = new DesiredStateCache(path, silentLogger);
    expect(b.machineByMac(MAC)).toMatchObject({ netboot: false, bootenv: 'local' });
    expect(b.machineById('m1')).toMatchObject({ netboot: false, bootenv: 'local' });
  });

  it('keeps the override while the central still disagrees, drops it (on disk too) once the central reflects it', async () => {
    const b = new DesiredStateCache(path, silentLogger);
    await b.replace(state(true, 'debian', 'v2')); // the central has not caught up
    expect(b.machineByMac(MAC)).toMatchObject({ netboot: false, bootenv: 'local' });
    expect(new DesiredStateCache(path, silentLogger).machineByMac(MAC)).toMatchObject({ netboot: false });
    await b.replace(state(false, 'local', 'v3'));
    expect(JSON.parse(readFileSync(`${dir}/desired-state.overrides.json`, 'utf8'))).toEqual({});
    // The central now owns the value: a later change from it is not masked by a stale override.
    await b.replace(state(true, 'debian', 'v4'));
    expect(b.machineByMac(MAC)).toMatchObject({ netboot: true, bootenv: 'debian' });
    expect(new DesiredStateCache(path, silentLogger).machineByMac(MAC)).toMatchObject({ netboot: true, bootenv: 'debian' });
    expect(existsSync(path)).toBe(true);
  });
});
