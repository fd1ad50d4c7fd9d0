import { Agent } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCentrals, sleep, spawnCentral, type CentralProcess } from '../central/support.js';
import { checkPrereqs } from '../support/require.js';
import { SmallDisk } from '../support/tmpfs.js';

/**
 * A real central (the built CLI) whose data dir is a small tmpfs, with concurrent writers over HTTPS until
 * the disk fills: every write that got 201 is there after kill -9 and a restart, every refused write got
 * 507 and is absent, nothing crashed; the central restarts on the still-full disk, serves reads, refuses
 * writes with 507 and says why in /healthz, and takes writes again once space is freed.
 */
const ready = checkPrereqs('central ENOSPC', { root: true, commands: ['mount', 'umount'] });

describe.skipIf(!ready)('central on a full disk', () => {
  let disk: SmallDisk;
  beforeAll(() => {
    disk = new SmallDisk(8 * 1024 * 1024);
  });
  afterAll(async () => {
    await killAllCentrals();
    disk?.unmount();
  });

  const machine = (n: number) => ({
    name: `m-${n}`,
    site: 'dc1',
    macs: [`52:54:00:${((n >> 16) & 255).toString(16).padStart(2, '0')}:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`],
    params: { pad: 'p'.repeat(300) },
  });
  const names = async (c: CentralProcess) => {
    const r = await c.request('GET', '/api/v1/machines?limit=10000');
    expect(r.status).toBe(200);
    return new Set<string>(r.json.items.map((m: { name: string }) => m.name));
  };

  it('acknowledges only what is on disk, restarts on the full disk, and recovers when space returns', async () => {
    const dataDir = join(disk.dir, 'data');
    let central = await spawnCentral({ dataDir });
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const acked = new Set<string>();
    const refused = new Set<string>();
    let next = 0;
    try {
      expect((await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } })).status).toBe(201);
      disk.fill(64 * 1024);
      // 16 concurrent writers until a good number of writes were refused.
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (refused.size < 40) {
            const m = machine(next++);
            const r = await central.request('POST', '/api/v1/machines', { agent, body: m });
            if (r.status === 201) acked.add(m.name);
            else {
              expect(r.status, r.text).toBe(507);
              expect(r.json.error.code).toBe('insufficient_storage');
              expect(r.json.error.message).toMatch(/disk is full/);
              refused.add(m.name);
            }
          }
        }),
      );
      expect(acked.size).toBeGreaterThan(20);
      expect(central.running).toBe(true);
      const health = await central.request('GET', '/healthz');
      expect(health.status).toBe(200);
      expect(health.json).toMatchObject({ status: 'degraded', reason: expect.stringMatching(/^disk full/) });
      // Readers see exactly the acknowledged writes.
      const seen = await names(central);
      for (const n of acked) expect(seen.has(n), n).toBe(true);
      for (const n of refused) expect(seen.has(n), n).toBe(false);
      await central.kill(); // kill -9 on the full disk
    } finally {
      agent.destroy();
      await central.cleanup();
    }

    // Restart on the still-full disk: it starts, serves reads, refuses writes with 507 and says why.
    central = await spawnCentral({ dataDir });
    try {
      const seen = await names(central);
      for (const n of acked) expect(seen.has(n), `acknowledged ${n} after kill -9 and restart`).toBe(true);
      for (const n of refused) expect(seen.has(n), `refused ${n}`).toBe(false);
      expect((await central.request('GET', '/healthz')).json).toMatchObject({ status: 'degraded', reason: expect.stringMatching(/disk full/) });
      for (let k = 0; ; k++) {
        expect(k).toBeLessThan(100); // what is left of a partly used page may take a few records
        const m = machine(next++);
        const r = await central.request('POST', '/api/v1/machines', { body: m });
        if (r.status === 201) acked.add(m.name);
        else {
          expect(r.status, r.text).toBe(507);
          refused.add(m.name);
          break;
        }
      }
      expect((await central.request('GET', '/healthz')).json).toMatchObject({ status: 'degraded', reason: expect.stringMatching(/^disk full/) });

      // Space comes back: writes are accepted at once, and the health turns ok by itself (compaction retry).
      disk.free();
      const after = machine(next++);
      expect((await central.request('POST', '/api/v1/machines', { body: after })).status).toBe(201);
      acked.add(after.name);
      let health = (await central.request('GET', '/healthz')).json;
      for (let k = 0; k < 150 && health.status !== 'ok'; k++) {
        await sleep(200);
        health = (await central.request('GET', '/healthz')).json;
      }
      expect(health).toEqual({ status: 'ok' });
      expect(central.running).toBe(true);
      expect((await central.stop()).code).toBe(0);
    } finally {
      await central.cleanup();
    }

    central = await spawnCentral({ dataDir });
    try {
      const seen = await names(central);
      for (const n of acked) expect(seen.has(n), n).toBe(true);
      for (const n of refused) expect(seen.has(n), n).toBe(false);
      expect(seen.size).toBe(acked.size);
    } finally {
      await central.cleanup();
    }
  });
});
