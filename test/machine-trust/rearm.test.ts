/**
 * The operator's re-arm (issue 11, "secrets once per deploy"): `underlay machines rearm NAME` →
 * `POST /api/v1/machines/{ref}/rearm` on a real central bumps the machine's secretsGeneration (write
 * permission; a viewer is refused), which the agent receives in its desired state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createSite, runCli, spawnCentral, type CentralProcess } from '../agent-link/support.js';

describe('re-arming a machine’s secrets', () => {
  let central: CentralProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    central = await spawnCentral();
    env = { UNDERLAY_URL: central.url, UNDERLAY_TOKEN: central.token, UNDERLAY_CA: central.caPath };
    await createSite(central, 'dc1', [{ name: 'web-01', mac: '52:54:00:ee:00:01' }]);
  }, 200_000);
  afterAll(async () => {
    await central?.cleanup();
  });

  it('underlay machines rearm NAME bumps secretsGeneration each time', async () => {
    const one = await runCli(['machines', 'rearm', 'web-01', '-o', 'json'], { env });
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ name: 'web-01', secretsGeneration: 1 });
    const two = await runCli(['machines', 'rearm', 'web-01', '-o', 'json'], { env });
    expect(JSON.parse(two.stdout)).toMatchObject({ secretsGeneration: 2 });
    expect(await api(central, 'GET', '/api/v1/machines/web-01')).toMatchObject({ secretsGeneration: 2 });
  });

  it('needs write permission; an unknown machine is 404', async () => {
    const { token } = await api<{ token: string }>(central, 'POST', '/api/v1/tokens', { role: 'viewer' });
    const denied = await runCli(['machines', 'rearm', 'web-01'], { env: { ...env, UNDERLAY_TOKEN: token } });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/403/);
    expect(await api(central, 'GET', '/api/v1/machines/web-01')).toMatchObject({ secretsGeneration: 2 });
    expect((await central.request('POST', '/api/v1/machines/nope/rearm')).status).toBe(404);
  });
});
