import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAllCentrals, spawnCentral, tempDir } from './support.js';

/**
 * "A write the API acknowledges is on disk before the response": 500 concurrent machine creates over
 * HTTPS, kill -9 the central once some have been acknowledged, restart on the same data dir, and every
 * acknowledged machine must be there, whole, and the data files must parse.
 */
const parent = tempDir('underlay-durability-');
afterAll(async () => {
  await killAllCentrals();
  rmSync(parent, { recursive: true, force: true });
});

function checkDataFiles(dir: string): { journalRecords: number } {
  JSON.parse(readFileSync(join(dir, 'store.json'), 'utf8'));
  let journalRecords = 0;
  for (const f of readdirSync(dir).filter((n) => /^journal\.\d+\.jsonl$/.test(n))) {
    const text = readFileSync(join(dir, f), 'utf8');
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    for (const line of complete.split('\n').filter(Boolean)) {
      JSON.parse(line); // every newline-terminated record parses; only an unterminated tail may be torn
      journalRecords++;
    }
  }
  return { journalRecords };
}

describe('durability', () => {
  it('keeps every acknowledged write across kill -9 in the middle of 500 concurrent writes', async () => {
    const dir = join(parent, 'data');
    const central = await spawnCentral({ dataDir: dir });
    const TOTAL = 500;
    const KILL_AFTER = 150;
    const acked = new Map<string, string>(); // name → id
    let failed = 0;
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    try {
      expect((await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } })).status).toBe(201);
      let killed = false;
      await Promise.all(
        Array.from({ length: TOTAL }, async (_, i) => {
          const name = `m-${String(i).padStart(4, '0')}`;
          const mac = `52:54:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}:01`;
          try {
            const r = await central.request('POST', '/api/v1/machines', { agent, body: { name, site: 'dc1', macs: [mac], params: { i } } });
            if (r.status === 201) {
              acked.set(name, r.json.id);
              if (!killed && acked.size >= KILL_AFTER) {
                killed = true;
                process.kill(central.pid, 'SIGKILL');
              }
            } else failed++;
          } catch {
            failed++; // connection reset by the kill: never acknowledged
          }
        }),
      );
      const exit = await central.exited;
      expect(exit.signal).toBe('SIGKILL');
    } finally {
      agent.destroy();
      await central.cleanup();
    }
    expect(acked.size).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(acked.size + failed).toBe(TOTAL);
    expect(acked.size).toBeLessThan(TOTAL); // the kill really landed in the middle

    // The files left by the crash parse (a torn, unterminated tail is allowed).
    checkDataFiles(dir);

    const again = await spawnCentral({ dataDir: dir });
    try {
      const r = await again.request('GET', '/api/v1/machines?limit=10000');
      expect(r.status).toBe(200);
      const byName = new Map<string, { id: string; site: string; macs: string[]; params: { i: number } }>(r.json.items.map((m: { name: string }) => [m.name, m]));
      const missing = [...acked.keys()].filter((n) => !byName.has(n));
      expect(missing).toEqual([]);
      for (const [name, id] of acked) {
        const m = byName.get(name)!;
        expect(m.id).toBe(id);
        expect(m.site).toBe('dc1');
        expect(m.params.i).toBe(Number(name.slice(2)));
      }
      // Unacknowledged writes may or may not have landed, but nothing beyond what was sent exists.
      expect(r.json.total).toBeLessThanOrEqual(TOTAL);
      expect(r.json.total).toBe(byName.size);
      // The restarted central accepts writes and survives a clean restart with everything in place.
      expect((await again.request('POST', '/api/v1/machines', { body: { name: 'after-crash', site: 'dc1' } })).status).toBe(201);
      expect((await again.stop()).code).toBe(0);
    } finally {
      await again.cleanup();
    }
    checkDataFiles(dir);
    const third = await spawnCentral({ dataDir: dir });
    try {
      const r = await third.request('GET', '/api/v1/machines?limit=10000');
      const names = new Set(r.json.items.map((m: { name: string }) => m.name));
      for (const n of acked.keys()) expect(names.has(n), n).toBe(true);
      expect(names.has('after-crash')).toBe(true);
    } finally {
      await third.cleanup();
    }
  });
});
