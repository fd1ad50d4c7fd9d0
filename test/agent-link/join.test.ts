import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentJoin, api, joinToken, killAllAgents, removeDir, runCli, spawnAgent, spawnCentral, tempDir, waitFor, type CentralProcess } from './support.js';

/**
 * Join: a one-time token carrying the central CA's fingerprint; keys made on the agent; refusals for
 * reused, expired and forged tokens; and a man in the middle (a second central with its own CA) is
 * refused before the token leaves the agent.
 */
let a: CentralProcess;
let b: CentralProcess;
let dir: string;
const cliEnv = (c: CentralProcess) => ({ UNDERLAY_URL: c.url, UNDERLAY_TOKEN: c.token, UNDERLAY_CA: c.caPath });

beforeAll(async () => {
  dir = tempDir('underlay-join-');
  [a, b] = await Promise.all([spawnCentral(), spawnCentral()]);
  await api(a, 'POST', '/api/v1/sites', { name: 'rack-a' });
  await api(b, 'POST', '/api/v1/sites', { name: 'rack-b' });
});
afterAll(async () => {
  await killAllAgents();
  await Promise.all([a?.cleanup(), b?.cleanup()]);
  removeDir(dir);
});

describe('agent join', () => {
  it('happy path: identity files, private keys 0600, a client certificate from the central CA, connected in "agents list"', async () => {
    const state = join(dir, 'happy');
    const created = await runCli(['token', 'create', '--role', 'agent-join', '--site', 'rack-a', '-o', 'json'], { env: cliEnv(a) });
    expect(created.code, created.stderr).toBe(0);
    const token = JSON.parse(created.stdout).token as string;
    expect(token).toMatch(/^ulj1\.ul_[0-9a-f]{16}_.+\.[0-9a-f]{64}$/);
    expect(token.endsWith(new X509Certificate(a.ca).fingerprint256.replace(/:/g, '').toLowerCase())).toBe(true);

    const r = await agentJoin(a.url, token, state, 'happy-agent');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/joined: agent [0-9a-f-]{36} at site rack-a/);

    for (const f of ['agent.json', 'tls.key', 'tls.pem', 'ca.pem', 'seal.key']) expect(existsSync(join(state, f)), f).toBe(true);
    for (const f of ['tls.key', 'seal.key', 'agent.json']) expect(statSync(join(state, f)).mode & 0o777, f).toBe(0o600);
    expect(statSync(state).mode & 0o777).toBe(0o700);

    const identity = JSON.parse(readFileSync(join(state, 'agent.json'), 'utf8'));
    const signing = JSON.parse(readFileSync(join(a.dataDir, 'signing.key'), 'utf8'));
    expect(identity).toMatchObject({ site: 'rack-a', name: 'happy-agent', signingPublicKey: signing.publicKey });
    const cert = new X509Certificate(readFileSync(join(state, 'tls.pem')));
    expect(cert.checkIssued(new X509Certificate(a.ca))).toBe(true);
    expect(cert.subject).toContain(`agent:${identity.agentId}`);
    // the key the certificate certifies is the one made on the agent
    expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(join(state, 'tls.key'))))).toBe(true);
    expect(new X509Certificate(readFileSync(join(state, 'ca.pem'))).fingerprint256).toBe(new X509Certificate(a.ca).fingerprint256);

    const agent = spawnAgent(state);
    const listed = await waitFor('agent connected in "agents list"', async () => {
      const l = await runCli(['agents', 'list', '-o', 'json'], { env: cliEnv(a) });
      const items = (JSON.parse(l.stdout) as { items: { id: string; connected: boolean; name: string }[] }).items;
      return items.find((x) => x.id === identity.agentId && x.connected);
    });
    expect(listed.name).toBe('happy-agent');
    await agent.stop();
    await waitFor('agent shown disconnected after it stopped', async () => !(await api(a, 'GET', `/api/v1/agents/${identity.agentId}`)).connected);
  });

  it('a reused token fails with a clear message and leaves no identity behind', async () => {
    const { token } = await joinToken(a, 'rack-a');
    const first = await agentJoin(a.url, token, join(dir, 'reuse-1'), 'reuse-1');
    expect(first.code, first.stderr).toBe(0);
    const second = await agentJoin(a.url, token, join(dir, 'reuse-2'), 'reuse-2');
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/refused the join token: this one-time token has already been used/);
    expect(existsSync(join(dir, 'reuse-2', 'agent.json'))).toBe(false);
    const agents = (await api(a, 'GET', '/api/v1/agents')).items as { name: string }[];
    expect(agents.filter((x) => x.name === 'reuse-2')).toHaveLength(0);
  });

  it('an expired token (--ttl 1s) fails with a clear message', async () => {
    const created = await runCli(['token', 'create', '--role', 'agent-join', '--site', 'rack-a', '--ttl', '1s', '-o', 'json'], { env: cliEnv(a) });
    expect(created.code, created.stderr).toBe(0);
    const { token } = JSON.parse(created.stdout) as { token: string };
    const id = /^ulj1\.ul_([0-9a-f]{16})_/.exec(token)![1];
    const { expiresAt } = await api<{ expiresAt: string }>(a, 'GET', `/api/v1/tokens/${id}`);
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now() - 60_000);
    await waitFor('the token to expire', () => Date.now() > Date.parse(expiresAt) + 50);
    const r = await agentJoin(a.url, token, join(dir, 'expired'), 'expired');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refused the join token: the bearer token has expired/);
    expect(existsSync(join(dir, 'expired', 'agent.json'))).toBe(false);
  });

  it('a forged token fails with a clear message (well-formed but unknown secret; and garbage)', async () => {
    const { token } = await joinToken(a, 'rack-a');
    const [, prefix, secret, fp] = /^ulj1\.(ul_[0-9a-f]{16}_)([A-Za-z0-9_-]{43})\.([0-9a-f]{64})$/.exec(token)!;
    const forged = `ulj1.${prefix}${randomBytes(32).toString('base64url')}.${fp}`;
    expect(forged).not.toContain(secret);
    const r = await agentJoin(a.url, forged, join(dir, 'forged'), 'forged');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refused the join token: the bearer token is not valid/);
    const g = await agentJoin(a.url, 'ulj1.not-a-token', join(dir, 'garbage'), 'garbage');
    expect(g.code).toBe(1);
    expect(g.stderr).toMatch(/not a valid join token/);
    // the genuine token was not burnt by the forgery
    const ok = await agentJoin(a.url, token, join(dir, 'after-forgery'), 'after-forgery');
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('a wrong CA fingerprint (a man in the middle) is refused before the token is sent', async () => {
    // The "man in the middle" is a second central with its own CA. The agent holds a token whose
    // fingerprint is central A's, but is pointed at B.
    const fpA = new X509Certificate(a.ca).fingerprint256.replace(/:/g, '').toLowerCase();
    const bToken = await joinToken(b, 'rack-b');
    const [, bearerB] = bToken.token.split('.');
    const mitm = await agentJoin(b.url, `ulj1.${bearerB}.${fpA}`, join(dir, 'mitm'), 'mitm');
    expect(mitm.code).toBe(1);
    expect(mitm.stderr).toMatch(/did not present the CA whose fingerprint the join token carries.*refusing to send anything/);
    expect(existsSync(join(dir, 'mitm', 'agent.json'))).toBe(false);
    // A token minted by A, pointed at B: refused as well.
    const aToken = await joinToken(a, 'rack-a');
    const mitm2 = await agentJoin(b.url, aToken.token, join(dir, 'mitm2'), 'mitm2');
    expect(mitm2.code).toBe(1);
    expect(mitm2.stderr).toMatch(/man in the middle/);

    // B never saw a join request: its token is unused, it has no agent, and the same bearer still joins
    // B when paired with B's real fingerprint.
    const tokB = await api(b, 'GET', `/api/v1/tokens/${bToken.id}`);
    expect(tokB.usedAt).toBeUndefined();
    expect((await api(b, 'GET', '/api/v1/agents')).total).toBe(0);
    expect((await api(a, 'GET', `/api/v1/tokens/${aToken.id}`)).usedAt).toBeUndefined();
    const genuine = await agentJoin(b.url, bToken.token, join(dir, 'b-genuine'), 'b-genuine');
    expect(genuine.code, genuine.stderr).toBe(0);
    expect((await api(b, 'GET', `/api/v1/tokens/${bToken.id}`)).usedAt).toBeDefined();
  });

  it('refuses a plain-http central URL', async () => {
    const { token } = await joinToken(a, 'rack-a');
    const r = await agentJoin(a.url.replace('https:', 'http:'), token, join(dir, 'http'), 'http');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/must be https/);
  });
});
