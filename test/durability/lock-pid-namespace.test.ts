import { readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAllCentrals, lockHolder, spawnCentral, tempDir, type CentralProcess } from '../central/support.js';
import { checkPrereqs } from '../support/require.js';

/**
 * The data-dir lock dies with its process, whatever its PID: a central run as PID 1 of a fresh PID
 * namespace (as in a container) is killed with kill -9, and the next one, again PID 1, must start (a
 * PID probe would see "PID 1 is alive" and refuse). A second live central is still refused, naming it.
 */
const ready = checkPrereqs('data-dir lock in a PID namespace', { root: true, commands: ['unshare'] });
const UNSHARE = ['unshare', '--pid', '--fork', '--mount-proc'];

/** The host PID of the namespace's PID 1 (the central), the only child of `unshare --fork`. */
function nsInit(c: CentralProcess): number {
  const children = readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  expect(children).toHaveLength(1);
  return children[0];
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone already */
  }
}

const parent = tempDir('underlay-lock-ns-');
afterAll(async () => {
  await killAllCentrals();
  rmSync(parent, { recursive: true, force: true });
});

describe.skipIf(!ready)('data-dir lock', () => {
  it('lets a central that is PID 1 again start after kill -9 of the previous PID 1, and refuses a second live one', async () => {
    const dataDir = join(parent, 'data');
    const first = await spawnCentral({ dataDir, wrap: UNSHARE });
    let init = 0;
    try {
      expect(await lockHolder(dataDir)).toMatchObject({ pid: 1, role: 'central', hostname: hostname() });
      init = nsInit(first);
      process.kill(init, 'SIGKILL');
      await first.exited;
    } finally {
      if (init) killQuietly(init);
      await first.cleanup();
    }

    const second = await spawnCentral({ dataDir, wrap: UNSHARE });
    const secondInit = nsInit(second);
    try {
      expect(await lockHolder(dataDir)).toMatchObject({ pid: 1, role: 'central' });
      expect((await second.request('GET', '/healthz')).status).toBe(200);

      // A second central on the same data dir, while the first lives: refused, naming the holder.
      const third = await spawnCentral({ dataDir, expectExit: true });
      expect(third.exitInfo?.code).toBe(1);
      expect(third.stderr).toContain(`in use by central process 1 on ${hostname()}`);
      expect(second.running).toBe(true);
    } finally {
      killQuietly(secondInit);
      await second.cleanup();
    }
  });
});
