import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSite, joinAgent, killAllAgents, removeDir, spawnAgent, spawnCentral, tempDir, type CentralProcess } from '../agent-link/support.js';

/**
 * The agent's state directory has the same lock as the central's data dir: a second agent on it is
 * refused, naming the live one; after kill -9 of the holder the next agent starts.
 */
let central: CentralProcess | undefined;
const dir = tempDir('underlay-agent-lock-');
afterAll(async () => {
  await killAllAgents();
  await central?.cleanup();
  removeDir(dir);
});

describe('agent state-dir lock', () => {
  it('refuses a second agent on the same state dir and lets one start after kill -9 of the holder', async () => {
    central = await spawnCentral();
    await createSite(central, 'dc1');
    const state = join(dir, 'agent');
    await joinAgent(central, 'dc1', state);
    const first = spawnAgent(state);
    await first.waitLog('link ready');
    const second = spawnAgent(state);
    const exit = await second.exited;
    expect(exit.code).toBe(1);
    expect(second.stderr).toContain(`in use by agent process ${first.pid}`);
    expect(first.running).toBe(true);
    await first.kill();
    const third = spawnAgent(state, { env: { UNDERLAY_OUTBOX_MAX_RECORDS: '5', UNDERLAY_OUTBOX_MAX_BYTES: '1M' } });
    await third.waitLog('link ready');
    await third.stop();
  });
});
