import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCentrals, runCli, spawnCentral, type CentralProcess } from './support.js';

/**
 * Token lifecycle through the CLI against a real central: join tokens expire after 24 h unless told
 * otherwise and say so; `underlay central rotate-admin-token` replaces the central's own admin token.
 */
let central: CentralProcess;
let env: Record<string, string>;

beforeAll(async () => {
  central = await spawnCentral();
  env = { UNDERLAY_URL: central.url, UNDERLAY_CA: central.caPath };
  expect((await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } })).status).toBe(201);
});
afterAll(async () => {
  await central?.cleanup();
  await killAllCentrals();
});

const withToken = (token: string) => ({ ...env, UNDERLAY_TOKEN: token });

describe('join token expiry', () => {
  it('a join token expires in 24 h by default; the human output says when (stderr), the token alone on stdout', async () => {
    const before = Date.now();
    const human = await runCli(['token', 'create', '--role', 'agent-join', '--site', 'dc1', '-o', 'table'], { env: withToken(central.token) });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout.trim()).toMatch(/^ulj1\.ul_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\.[0-9a-f]{64}$/);
    const at = /^expires at (\S+)$/m.exec(human.stderr)?.[1];
    expect(at).toBeDefined();
    expect(Date.parse(at!) - before).toBeGreaterThan(24 * 3_600_000 - 60_000);
    expect(Date.parse(at!) - Date.now()).toBeLessThanOrEqual(24 * 3_600_000);

    const json = await runCli(['token', 'create', '--role', 'agent-join', '--site', 'dc1', '-o', 'json'], { env: withToken(central.token) });
    const parsed = JSON.parse(json.stdout) as { token: string; expiresAt: string };
    expect(Object.keys(parsed)).toEqual(['token', 'expiresAt']);
    expect(Math.abs(Date.parse(parsed.expiresAt) - Date.now() - 24 * 3_600_000)).toBeLessThan(60_000);
    // The stored token carries the same expiry.
    const id = /^ulj1\.ul_([0-9a-f]{16})_/.exec(parsed.token)![1];
    expect((await central.request('GET', `/api/v1/tokens/${id}`)).json.expiresAt).toBe(parsed.expiresAt);
  });

  it('--ttl overrides the default; --ttl never is the explicit way to no expiry; nonsense is refused', async () => {
    const short = JSON.parse((await runCli(['token', 'create', '--role', 'agent-join', '--site', 'dc1', '--ttl', '10m', '-o', 'json'], { env: withToken(central.token) })).stdout);
    expect(Math.abs(Date.parse(short.expiresAt) - Date.now() - 600_000)).toBeLessThan(60_000);
    const never = await runCli(['token', 'create', '--role', 'agent-join', '--site', 'dc1', '--ttl', 'never', '-o', 'table'], { env: withToken(central.token) });
    expect(never.code).toBe(0);
    expect(never.stderr.trim()).toBe('never expires');
    const bad = await runCli(['token', 'create', '--role', 'agent-join', '--site', 'dc1', '--ttl', 'forever'], { env: withToken(central.token) });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/ttl/);
  });
});

describe('underlay central rotate-admin-token', () => {
  it('revokes the old admin token (401), writes and prints a new one that works', async () => {
    const old = central.token;
    expect(readFileSync(join(central.dataDir, 'admin.token'), 'utf8').trim()).toBe(old);
    // As an operator on the central's host: only --data (admin.token and ca.pem come from there) and the URL.
    const r = await runCli(['central', 'rotate-admin-token', '--data', central.dataDir, '--url', central.url, '-o', 'table']);
    expect(r.code, r.stderr).toBe(0);
    const fresh = r.stdout.trim();
    expect(fresh).toMatch(/^ul_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(fresh).not.toBe(old);
    expect(r.stderr).toMatch(/admin\.token.*revoked/);
    expect(r.stderr).not.toContain(fresh);
    expect(readFileSync(join(central.dataDir, 'admin.token'), 'utf8').trim()).toBe(fresh);

    const asOld = await central.request('GET', '/api/v1/sites', { token: old });
    expect(asOld.status).toBe(401);
    expect(asOld.json.error.message).toMatch(/revoked/);
    expect((await central.request('GET', '/api/v1/sites', { token: fresh })).status).toBe(200);
    expect((await central.request('POST', '/api/v1/sites', { token: fresh, body: { name: 'dc2' } })).status).toBe(201);
    central.token = fresh;

    // -o json (the default when piped): the new token, its id and the revoked one's.
    const j = await runCli(['central', 'rotate-admin-token', '--data', central.dataDir, '--url', central.url]);
    const rotated = JSON.parse(j.stdout) as { token: string; id: string; revokedId: string };
    expect(rotated.revokedId).toBe(fresh.split('_')[1]);
    expect(rotated.id).toBe(rotated.token.split('_')[1]);
    expect((await central.request('GET', '/api/v1/sites', { token: fresh })).status).toBe(401);
    central.token = rotated.token;

    // A non-admin may not rotate it.
    const viewer = (await central.request('POST', '/api/v1/tokens', { body: { role: 'viewer' } })).json.token as string;
    const denied = await runCli(['central', 'rotate-admin-token', '--data', central.dataDir, '--url', central.url, '--token', viewer]);
    expect(denied.code).toBe(3);
    expect(denied.stderr).toMatch(/403/);
    expect(readFileSync(join(central.dataDir, 'admin.token'), 'utf8').trim()).toBe(central.token);
    expect((await central.request('GET', '/api/v1/sites')).status).toBe(200);
    // A rotation naming a token that is no longer in the file (someone rotated meanwhile) is refused.
    const stale = await central.request('POST', '/api/v1/admin-token/rotate', { body: { revoke: fresh.split('_')[1] } });
    expect(stale.status).toBe(409);
    expect(readFileSync(join(central.dataDir, 'admin.token'), 'utf8').trim()).toBe(central.token);
    expect((await central.request('POST', '/api/v1/admin-token/rotate', { body: {} })).status).toBe(400);
    expect((await central.request('GET', '/api/v1/sites')).status).toBe(200);
  });

  it('the rotated token survives a restart of the central', async () => {
    const token = central.token;
    await central.stop('SIGTERM');
    const again = await spawnCentral({ dataDir: central.dataDir });
    try {
      expect(again.token).toBe(token);
      expect((await again.request('GET', '/api/v1/sites')).status).toBe(200);
      expect(again.stdout).not.toMatch(/Initial admin token/);
    } finally {
      await again.kill();
    }
  });
});
