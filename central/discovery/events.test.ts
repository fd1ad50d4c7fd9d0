import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Machine } from '../../shared/api/resources.js';
import { silentLogger } from '../../shared/log/logger.js';
import type { AgentDoc } from '../agents/collections.js';

import { memoryStore } from '../all-collections.test-support.js';
import type { MemoryStore } from '../store/memory-store.js';
import { discoveryHandlers } from './events.js';

describe('discovery events → inventory', () => {
  let store: MemoryStore;
  let handlers: ReturnType<typeof discoveryHandlers>;
  const agent = { id: 'a1', site: 'rack1' } as AgentDoc;
  const ev = (data: unknown) => ({ type: 'event' as const, id: crypto.randomUUID(), kind: 'discovery', data, at: new Date().toISOString() });
  const facts = (uuid: string, mem = 512 * 1048576, nics: string[] = []) => ({
    system: { uuid, serial: 'SN-1', vendor: 'QEMU', product: 'Standard PC' },
    firmware: 'bios',
    cpu: { model: 'QEMU Virtual CPU', sockets: 1, cores: 2, threads: 2 },
    memory: { totalBytes: mem },
    disks: [{ name: 'sda', sizeBytes: 1073741824, model: 'QEMU HARDDISK', serial: 'D1', rotational: true }],
    nics: nics.map((mac, i) => ({ name: `eth${i}`, mac, driver: 'e1000', link: true, speedMbps: 1000 })),
  });
  const machines = () => store.list<Machine>('machines').items;

  beforeEach(async () => {
    store = memoryStore();
    const now = new Date().toISOString();
    await store.put('sites', { id: 's', name: 'rack1', params: {}, createdAt: now, updatedAt: now });
    handlers = discoveryHandlers(store, silentLogger);
  });
  afterEach(async () => {
    await store.close();
  });

  it('creates an unknown machine with the id the agent proposed, its facts and every NIC MAC', async () => {
    await handlers.discovery(agent, ev({ machineId: 'proposed-1', mac: '52:54:00:00:00:01', facts: facts('u-1', undefined, ['52:54:00:00:00:01', '52:54:00:00:00:02']) }));
    const [m] = machines();
    expect(m).toMatchObject({ id: 'proposed-1', site: 'rack1', state: 'discovered', uuid: 'u-1', serial: 'SN-1', bootenv: 'discovery', netboot: true });
    expect(m.macs.sort()).toEqual(['52:54:00:00:00:01', '52:54:00:00:00:02']);
    expect((m.facts as { memory: { totalBytes: number } }).memory.totalBytes).toBe(512 * 1048576);
  });

  it('rediscovery by MAC or by system UUID updates the one record, never a duplicate', async () => {
    await handlers.discovery(agent, ev({ machineId: 'p1', mac: '52:54:00:00:00:01', facts: facts('u-1') }));
    await handlers.discovery(agent, ev({ machineId: 'p1', mac: '52:54:00:00:00:01', facts: facts('u-1', 1024 * 1048576) }));
    // Booted from another NIC: a different MAC, the same UUID.
    await handlers.discovery(agent, ev({ machineId: 'p2', mac: '52:54:00:00:00:09', facts: facts('u-1', 2048 * 1048576) }));
    expect(machines()).toHaveLength(1);
    const [m] = machines();
    expect(m.id).toBe('p1');
    expect(m.macs.sort()).toEqual(['52:54:00:00:00:01', '52:54:00:00:00:09']);
    expect((m.facts as { memory: { totalBytes: number } }).memory.totalBytes).toBe(2048 * 1048576);
  });

  it('ignores malformed discovery data and discovery for a site that no longer exists', async () => {
    await handlers.discovery(agent, ev({ machineId: 'x', mac: 'not-a-mac', facts: {} }));
    await handlers.discovery(agent, ev({ machineId: 'x', mac: '52:54:00:00:00:01', facts: { memory: { totalBytes: 'lots' } } }));
    await handlers.discovery({ id: 'a2', site: 'gone' } as AgentDoc, ev({ machineId: 'y', mac: '52:54:00:00:00:03', facts: facts('u-3') }));
    expect(machines()).toHaveLength(0);
  });

  it('refuses facts outside the schema (unknown key, long string, oversized), stores nothing and logs the paths, not the values', async () => {
    const lines: { msg: string; problems?: { path: string; message: string }[] }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
        cb();
      },
    });
    const strict = discoveryHandlers(store, pino({ level: 'warn' }, sink));
    const payload = "{{ lookup('pipe','id') }}";
    const bigDisks = Array.from({ length: 200 }, (_, i) => ({ name: `sd${i}`, model: 'm'.repeat(256), serial: 's'.repeat(256) }));
    await strict.discovery(agent, ev({ machineId: 'x1', mac: '52:54:00:00:00:01', facts: { ...facts('u-1'), hostname: payload } }));
    await strict.discovery(agent, ev({ machineId: 'x2', mac: '52:54:00:00:00:02', facts: { ...facts('u-2'), cpu: { model: 'x'.repeat(300) } } }));
    await strict.discovery(agent, ev({ machineId: 'x3', mac: '52:54:00:00:00:03', facts: { ...facts('u-3'), disks: bigDisks } }));
    expect(machines()).toHaveLength(0);
    expect(lines.map((l) => l.msg)).toEqual(['malformed discovery event; ignored', 'malformed discovery event; ignored', 'malformed discovery event; ignored']);
    expect(lines[0]!.problems).toEqual([{ path: 'facts.hostname', message: 'unknown field' }]);
    expect(lines[1]!.problems![0]!.path).toBe('facts.cpu.model');
    expect(lines[2]!.problems![0]!.message).toMatch(/at most 65536/);
    expect(JSON.stringify(lines)).not.toContain('lookup');
  });

  it('an install success switches the machine to local boot and disallows netboot', async () => {
    await handlers.discovery(agent, ev({ machineId: 'p1', mac: '52:54:00:00:00:01', facts: facts('u-1') }));
    await handlers['install-done'](agent, { ...ev({ machineId: 'p1' }), kind: 'install-done' });
    expect(machines()[0]).toMatchObject({ bootenv: 'local', netboot: false });
    // Another site's agent cannot flip it.
    const m = machines()[0];
    await store.put('machines', { ...m, bootenv: 'discovery', netboot: true });
    await handlers['install-done']({ id: 'a9', site: 'other' } as AgentDoc, { ...ev({ machineId: 'p1' }), kind: 'install-done' });
    expect(machines()[0]).toMatchObject({ bootenv: 'discovery', netboot: true });
  });

  it('never touches a machine of another site: a MAC, UUID or id claimed at another site is refused and recorded', async () => {
    const now = new Date().toISOString();
    await store.put('sites', { id: 's2', name: 'rack2', params: {}, createdAt: now, updatedAt: now });
    const other = { id: 'a2', site: 'rack2' } as AgentDoc;
    await handlers.discovery(agent, ev({ machineId: 'p1', mac: '52:54:00:00:00:01', facts: facts('u-1', 512 * 1048576) }));
    const before = machines()[0];
    expect(before.servedBy).toBe('a1');
    // Same MAC from rack2: refused.
    await handlers.discovery(other, ev({ machineId: 'q1', mac: '52:54:00:00:00:01', facts: facts('u-1', 4096 * 1048576) }));
    // Same machine id proposed from rack2 with a fresh MAC: refused (would overwrite p1).
    await handlers.discovery(other, ev({ machineId: 'p1', mac: '52:54:00:00:00:02', facts: facts('u-x', 4096 * 1048576) }));
    expect(machines()).toEqual([before]);
    const refused = store.list<{ id: string; kind: string; site: string }>('events').items.filter((e) => e.kind === 'discovery-refused');
    expect(refused).toHaveLength(2);
    expect(refused.every((e) => e.site === 'rack2')).toBe(true);
    // The same UUID at rack2 with a fresh MAC and id is a different machine there (UUID matches are per site).
    await handlers.discovery(other, ev({ machineId: 'q3', mac: '52:54:00:00:00:03', facts: facts('u-1', 1024 * 1048576) }));
    expect(machines().find((m) => m.id === 'p1')).toEqual(before);
    expect(machines().find((m) => m.id === 'q3')).toMatchObject({ site: 'rack2', servedBy: 'a2' });
  });
});
