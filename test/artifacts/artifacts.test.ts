import { createHash, randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cleanEnv, freePort, HOST_AGENT_ENV, killAllCentrals, runCli, sleep, spawnCentral, tempDir, type CentralProcess } from '../central/support.js';
import { httpGet } from '../support/http-get.js';

/**
 * `underlay images fetch` downloads a boot environment's artifacts, checks their pinned sha256 and
 * stores them in the central; the site agent pulls them content-addressed and serves them itself, so
 * an air-gapped rack boots without the upstream (and without the central).
 */
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');


describe('artifacts: fetch, verify, store centrally, pull to the site', () => {
  let central: CentralProcess;
  let upstream: Server;
  let upstreamUrl: string;
  let env: Record<string, string>;
  let agent: ChildProcess | undefined;
  const dir = tempDir('underlay-artifacts-');
  const kernel = randomBytes(3 * 1024 * 1024 + 17);
  const initrd = randomBytes(1024 * 1024 + 3);
  let httpPort = 0;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const body = req.url === '/vmlinuz' ? kernel : req.url === '/initrd.img' ? initrd : null;
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': String(body.length) }).end(body);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    central = await spawnCentral();
    env = { UNDERLAY_URL: central.url, UNDERLAY_TOKEN: central.token, UNDERLAY_CA: central.caPath };
    expect((await runCli(['sites', 'create', 's1'], { env })).code).toBe(0);
  });

  afterAll(async () => {
    if (agent?.pid && agent.exitCode === null) agent.kill('SIGKILL');
    await killAllCentrals();
    await central?.cleanup();
    await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an artifact whose bytes do not match the pinned sha256 and stores nothing for it', async () => {
    const bootenv = {
      name: 'tiny',
      os: { family: 'test' },
      kernel: { url: `${upstreamUrl}/vmlinuz`, sha256: sha(kernel) },
      initrds: [{ url: `${upstreamUrl}/initrd.img`, sha256: sha(Buffer.from('not the initrd')) }],
      bootParams: 'console=ttyS0',
    };
    const created = await central.request('POST', '/api/v1/bootenvs', { body: bootenv });
    expect(created.status).toBe(201);
    const r = await runCli(['images', 'fetch', 'tiny', '-o', 'json'], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/pins sha256/);
    const list = (await central.request('GET', '/api/v1/artifacts')).json as { items: { sha256: string; urls: string[] }[] };
    expect(list.items.map((a) => a.sha256)).toEqual([sha(kernel)]);
    expect(existsSync(join(central.dataDir, 'artifacts', sha(initrd)))).toBe(false);
  });

  it('stores verified artifacts, content-addressed, with the URLs they stand for', async () => {
    const patched = await central.request('PATCH', '/api/v1/bootenvs/tiny', { body: { initrds: [{ url: `${upstreamUrl}/initrd.img`, sha256: sha(initrd) }] } });
    expect(patched.status).toBe(200);
    const r = await runCli(['images', 'fetch', 'tiny', '-o', 'json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout) as { url: string; result: string }[];
    expect(results.map((x) => x.result).sort()).toEqual(['already stored', 'stored']);
    expect(sha(readFileSync(join(central.dataDir, 'artifacts', sha(initrd))))).toBe(sha(initrd));
    const list = (await central.request('GET', '/api/v1/artifacts')).json as { items: { sha256: string; urls: string[] }[] };
    expect(list.items.find((a) => a.sha256 === sha(initrd))?.urls).toEqual([`${upstreamUrl}/initrd.img`]);
  });

  it('rejects an upload whose content does not hash to the sha256 it claims', async () => {
    const fake = sha(Buffer.from('something else'));
    const res = await central.request('PUT', `/api/v1/artifacts/${fake}`, { body: Buffer.from('tampered'), headers: { 'content-type': 'application/octet-stream' } });
    expect(res.status).toBe(400);
    expect(existsSync(join(central.dataDir, 'artifacts', fake))).toBe(false);
  });

  it('the agent pulls artifacts and serves them itself, even with the upstream gone', async () => {
    const join1 = await runCli(['token', 'create', '--role', 'agent-join', '--site', 's1', '-o', 'json'], { env });
    const token = (JSON.parse(join1.stdout) as { token: string }).token;
    const state = join(dir, 'agent');
    const joined = await runCli(['agent', 'join', '--central', central.url, '--token', token, '--state', state], { env: {} });
    expect(joined.code, joined.stderr).toBe(0);
    httpPort = await freePort();
    const tftpPort = await freePort();
    const bootDir = join(dir, 'boot');
    mkdirSync(bootDir, { recursive: true });
    agent = spawn(process.execPath, [CLI, 'agent', 'run', '--state', state, '--address', '127.0.0.1', '--dhcp', 'off', '--http-port', String(httpPort), '--tftp-port', String(tftpPort), '--boot-dir', bootDir], {
      env: cleanEnv({ ...HOST_AGENT_ENV }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    expect((await runCli(['machines', 'create', 'm1', '--site', 's1', '--mac', '52:54:00:12:34:56', '--bootenv', 'tiny'], { env })).code).toBe(0);

    const pulled = (s: string) => existsSync(join(bootDir, 'sha256', s));
    for (let i = 0; i < 600 && !(pulled(sha(kernel)) && pulled(sha(initrd))); i++) await sleep(100);
    expect(pulled(sha(kernel)) && pulled(sha(initrd)), log).toBe(true);

    // Air gap: the upstream disappears; the site still serves the boot.
    await new Promise<void>((r) => upstream.close(() => r()));
    let script = '';
    for (let i = 0; i < 100; i++) {
      const res = await httpGet(`http://127.0.0.1:${httpPort}/ipxe/script?mac=52:54:00:12:34:56&platform=pcbios&buildarch=x86_64`);
      script = res.body.toString();
      if (res.status === 200 && script.includes(`/files/sha256/${sha(initrd)}`)) break;
      await sleep(100);
    }
    expect(script).toContain(`http://127.0.0.1:${httpPort}/files/sha256/${sha(kernel)}`);
    expect(script).toContain(`http://127.0.0.1:${httpPort}/files/sha256/${sha(initrd)}`);
    expect(script).not.toContain(upstreamUrl);

    const whole = await httpGet(`http://127.0.0.1:${httpPort}/files/sha256/${sha(kernel)}`);
    expect(whole.status).toBe(200);
    expect(sha(whole.body)).toBe(sha(kernel));
    const part = await httpGet(`http://127.0.0.1:${httpPort}/files/sha256/${sha(kernel)}`, { range: 'bytes=1000-1999' });
    expect(part.status).toBe(206);
    expect(part.body.equals(kernel.subarray(1000, 2000))).toBe(true);
  });
});
