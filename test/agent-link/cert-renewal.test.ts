import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { api, createSite, createTask, getTask, isConnected, joinAgent, killAllAgents, removeDir, spawnAgent, spawnCentral, tempDir, waitFor, type AgentProcess, type CentralProcess } from './support.js';

/**
 * Agent certificate renewal over the link, with real processes: a central issuing 24-second agent
 * certificates; the connected agent renews after 2/3 of that (a new key and CSR on the agent), the new
 * serial is on the agent record, the agent reconnects with the new certificate, the old one is then
 * refused, tasks keep flowing; a revoked agent does not renew; an expired certificate is refused.
 */
const LIFETIME_S = 24;
let central: CentralProcess;
let dir: string;
let agent: AgentProcess;
let agentId: string;
let stateDir: string;
let idleState: string;
let joinedAt: number;

beforeAll(async () => {
  dir = tempDir('underlay-cert-renewal-');
  central = await spawnCentral({ args: ['--agent-cert-lifetime', `${LIFETIME_S}s`] });
  await createSite(central, 'rack-r');
  await createSite(central, 'rack-idle');
  stateDir = join(dir, 'renewing');
  idleState = join(dir, 'idle');
  joinedAt = Date.now();
  [agentId] = await Promise.all([joinAgent(central, 'rack-r', stateDir), joinAgent(central, 'rack-idle', idleState)]);
  agent = spawnAgent(stateDir);
  await waitFor('agent connected', () => isConnected(central, agentId));
});
afterAll(async () => {
  await killAllAgents();
  await central?.cleanup();
  removeDir(dir);
});

function connectWith(tls: { key: string; cert: string; ca: string }): Promise<void> {
  const ws = new WebSocket(central.url.replace('https', 'wss') + '/api/v1/agents/connect', tls);
  return new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      resolve();
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_q, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        ws.terminate();
        reject(new Error(`HTTP ${res.statusCode} ${body.trim()}`));
      });
    });
  });
}
const filesOf = (state: string) => ({ key: readFileSync(join(state, 'tls.key'), 'utf8'), cert: readFileSync(join(state, 'tls.pem'), 'utf8'), ca: readFileSync(join(state, 'ca.pem'), 'utf8') });

async function pingSucceeds(message: string) {
  const t = await createTask(central, { site: 'rack-r', kind: 'ping', payload: { message } });
  const done = await waitFor(`task ${message}`, async () => ((await getTask(central, t.id)).state === 'succeeded' ? getTask(central, t.id) : undefined));
  expect(done.output).toBe(`pong: ${message}`);
}

describe('agent certificate renewal', () => {
  it('the connected agent renews after 2/3 of the lifetime; the new serial is on its record; it reconnects with it and tasks flow', async () => {
    const joined = await api<{ certSerial: string; certExpiresAt: string }>(central, 'GET', `/api/v1/agents/${agentId}`);
    const old = filesOf(stateDir);
    expect(joined.certSerial).toBe(new X509Certificate(old.cert).serialNumber);
    // The join certificate has the central's configured lifetime (issued at notBefore + 5 min of back-dating).
    const issuedAt = Date.parse(new X509Certificate(old.cert).validFrom) + 5 * 60_000;
    expect(Math.abs(Date.parse(joined.certExpiresAt) - issuedAt - LIFETIME_S * 1000)).toBeLessThanOrEqual(1000);
    expect(issuedAt).toBeGreaterThanOrEqual(joinedAt - 1000);
    await pingSucceeds('before renewal');
    const readyBefore = agent.count('link ready');

    const renewed = await agent.waitLog('client certificate renewed', 1, 60_000);
    // Not before 2/3 of the lifetime (seconds granularity of certificate times: 1 s slack).
    expect(renewed.time - issuedAt).toBeGreaterThanOrEqual((LIFETIME_S * 2000) / 3 - 1000);
    const now = filesOf(stateDir);
    expect(now.key).not.toBe(old.key);
    const serial = new X509Certificate(now.cert).serialNumber;
    expect(renewed.serial).toBe(serial);
    const record = await api<{ certSerial: string; certExpiresAt: string; certFingerprint: string }>(central, 'GET', `/api/v1/agents/${agentId}`);
    expect(record.certSerial).toBe(serial);
    expect(record.certSerial).not.toBe(joined.certSerial);
    expect(Date.parse(record.certExpiresAt)).toBeGreaterThan(Date.parse(joined.certExpiresAt));
    expect(new X509Certificate(now.cert).subject).toBe(`CN=agent:${agentId}`);

    // It reconnects at once with the new certificate…
    await agent.waitLog('link ready', readyBefore + 1, 30_000);
    await waitFor('connected again', () => isConnected(central, agentId));
    // …after which the old certificate is no longer accepted, and the new one is.
    await waitFor('the old certificate refused', async () => {
      try {
        await connectWith(old);
        return false;
      } catch (e) {
        return /HTTP 403 unknown agent certificate/.test((e as Error).message);
      }
    }, 15_000);
    await pingSucceeds('after renewal');
    expect(agent.count('certificate renewal failed; will retry')).toBe(0);
  });

  it('a revoked agent does not renew: refused at connect, its record keeps its serial', async () => {
    const before = await api<{ certSerial: string }>(central, 'GET', `/api/v1/agents/${agentId}`);
    expect((await central.request('POST', `/api/v1/agents/${agentId}/revoke`)).status).toBe(200);
    await agent.waitLog('the central refused the agent connection', 1, 30_000);
    // Past the renewal time of the current certificate: nothing renewed, the record unchanged.
    const renewals = agent.count('client certificate renewed');
    await new Promise((r) => setTimeout(r, (LIFETIME_S * 2000) / 3 + 2000));
    expect(agent.count('client certificate renewed')).toBe(renewals);
    expect((await api<{ certSerial: string }>(central, 'GET', `/api/v1/agents/${agentId}`)).certSerial).toBe(before.certSerial);
    await expect(connectWith(filesOf(stateDir))).rejects.toThrow(/HTTP 403 .*revoked/);
    expect(agent.running).toBe(true);
  });

  it('an expired agent certificate is refused by the central', async () => {
    // The idle agent never ran, so it never renewed; its certificate ran out during the tests above.
    const { cert } = filesOf(idleState);
    await waitFor('the idle agent’s certificate to expire', () => Date.now() > Date.parse(new X509Certificate(cert).validTo) + 1000, 60_000);
    await expect(connectWith(filesOf(idleState))).rejects.toThrow(/HTTP 401 .*expired/i);
  });
});
