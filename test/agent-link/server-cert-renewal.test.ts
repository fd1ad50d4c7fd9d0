import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSite, createTask, getTask, isConnected, joinAgent, killAllAgents, removeDir, spawnAgent, spawnCentral, tempDir, waitFor, type AgentProcess, type CentralProcess } from './support.js';

/**
 * The central renews its HTTPS server certificate while it runs (a 15-second lifetime here: renewed
 * after 10 s) and swaps it into the running server: connected agents stay connected across the swap,
 * new TLS connections see the new certificate, which verifies against the same CA.
 */
let central: CentralProcess;
let dir: string;
let agent: AgentProcess;
let agentId: string;

beforeAll(async () => {
  dir = tempDir('underlay-server-cert-');
  central = await spawnCentral({ args: ['--server-cert-lifetime', '15s'] });
  await createSite(central, 'rack-s');
  agentId = await joinAgent(central, 'rack-s', join(dir, 'agent'));
  agent = spawnAgent(join(dir, 'agent'));
  await waitFor('agent connected', () => isConnected(central, agentId));
});
afterAll(async () => {
  await killAllAgents();
  await central?.cleanup();
  removeDir(dir);
});

/** The serial of the certificate a new TLS connection to the central sees (verified against the CA). */
function servedSerial(): Promise<string> {
  const u = new URL(central.url);
  return new Promise((resolve, reject) => {
    const s = connect({ host: u.hostname, port: Number(u.port), ca: central.ca, servername: 'localhost' }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(serial);
    });
    s.once('error', reject);
  });
}

async function pingSucceeds(message: string) {
  const t = await createTask(central, { site: 'rack-s', kind: 'ping', payload: { message } });
  const done = await waitFor(`task ${message}`, async () => ((await getTask(central, t.id)).state === 'succeeded' ? getTask(central, t.id) : undefined));
  expect(done.output).toBe(`pong: ${message}`);
}

describe('server certificate renewal without a restart', () => {
  it('new connections see the renewed certificate; the connected agent stays connected and tasks flow', async () => {
    const first = await servedSerial();
    expect(first.toLowerCase()).toBe(new X509Certificate(readFileSync(join(central.dataDir, 'server.pem'))).serialNumber.toLowerCase());
    const readyBefore = agent.count('link ready');
    const closedBefore = agent.count('link closed');
    await pingSucceeds('before the swap');

    const second = await waitFor('a renewed server certificate', async () => {
      const s = await servedSerial();
      return s !== first ? s : undefined;
    }, 60_000, 500);
    // The running central wrote it to its data dir too (a restart serves the same one).
    expect(second.toLowerCase()).toBe(new X509Certificate(readFileSync(join(central.dataDir, 'server.pem'))).serialNumber.toLowerCase());
    const x = new X509Certificate(readFileSync(join(central.dataDir, 'server.pem')));
    expect(x.checkIssued(new X509Certificate(central.ca))).toBe(true);
    expect(x.checkHost('localhost')).toBe('localhost');

    // The agent's connection survived the swap: no reconnect.
    expect(agent.count('link closed')).toBe(closedBefore);
    expect(agent.count('link ready')).toBe(readyBefore);
    expect(await isConnected(central, agentId)).toBe(true);
    await pingSucceeds('after the swap');
    // Plain API calls over new connections work too (the CLI/test client verifies against the CA).
    expect((await central.request('GET', '/healthz')).status).toBe(200);

    // A new agent connection after the swap still authenticates with its client certificate (the new
    // secure context keeps requesting and checking client certificates against the CA).
    const state = join(dir, 'agent');
    const ws = new WebSocket(central.url.replace('https', 'wss') + '/api/v1/agents/connect', {
      key: readFileSync(join(state, 'tls.key')), cert: readFileSync(join(state, 'tls.pem')), ca: readFileSync(join(state, 'ca.pem')),
    });
    const welcome = await new Promise<{ type: string; agent: string }>((resolve, reject) => {
      ws.once('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, agentVersion: 'test', stateVersion: null, lastSeq: 0 })));
      ws.once('message', (d) => resolve(JSON.parse(d.toString())));
      ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    ws.terminate();
    expect(welcome).toMatchObject({ type: 'welcome', agent: agentId });
    // Without a client certificate the upgrade is refused as before.
    const anon = new WebSocket(central.url.replace('https', 'wss') + '/api/v1/agents/connect', { ca: central.ca });
    await expect(new Promise((resolve, reject) => {
      anon.once('open', resolve);
      anon.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      anon.once('error', reject);
    })).rejects.toThrow(/HTTP 401/);
    anon.terminate();
    expect(central.running).toBe(true);
  });
});
