import { X509Certificate, createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, httpCall, killAllCentrals, lockHolder, lockSockets, spawnCentral, tempDir } from './support.js';

/** The central server process: identity across restarts, TLS, flags, signals and the data-dir lock. */
const dirs: string[] = [];
function dataDir(): string {
  const d = tempDir('underlay-server-');
  dirs.push(d);
  return join(d, 'data');
}
afterAll(async () => {
  await killAllCentrals();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const IDENTITY_FILES = ['ca.pem', 'ca.key', 'server.pem', 'server.key', 'signing.key', 'admin.token'];
const read = (dir: string) => Object.fromEntries(IDENTITY_FILES.map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
const fpOf = (stdout: string) => /CA fingerprint sha256:([0-9a-f]{64})/.exec(stdout)?.[1];

function handshake(port: number, opts: { ca?: string; servername?: string; host?: string }): Promise<{ authorized: boolean; error?: string; cert?: X509Certificate }> {
  return new Promise((resolve) => {
    const sock: TLSSocket = connect({ host: opts.host ?? '127.0.0.1', port, ca: opts.ca, servername: opts.servername, rejectUnauthorized: true }, () => {
      const raw = sock.getPeerX509Certificate();
      resolve({ authorized: sock.authorized, cert: raw });
      sock.end();
    });
    sock.once('error', (e: NodeJS.ErrnoException) => resolve({ authorized: false, error: e.code ?? e.message }));
  });
}

describe('central server', () => {
  it('prints and writes the admin token on first start, and reuses CA, certificate, signing key and token on restart', async () => {
    const dir = dataDir();
    const first = await spawnCentral({ dataDir: dir });
    try {
      expect(first.stdout).toContain(first.token);
      expect(first.token).toMatch(/^ul_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
      const fp = fpOf(first.stdout);
      expect(fp).toBe(createHash('sha256').update(new X509Certificate(first.ca).raw).digest('hex'));
      expect((await first.request('POST', '/api/v1/sites', { body: { name: 'kept' } })).status).toBe(201);
      const before = read(dir);
      expect((await first.stop('SIGTERM')).code).toBe(0);

      const second = await spawnCentral({ dataDir: dir, listen: `127.0.0.1:${first.port}` });
      try {
        expect(read(dir)).toEqual(before);
        expect(fpOf(second.stdout)).toBe(fp);
        expect(second.stdout).not.toContain('Initial admin token');
        // The old admin token still works, and the data is there.
        const r = await httpCall(second.url, before['ca.pem'], 'GET', '/api/v1/sites/kept', { token: first.token });
        expect(r.status).toBe(200);
        // The served certificate is the stored one.
        const hs = await handshake(second.port, { ca: before['ca.pem'], servername: 'localhost' });
        expect(hs.authorized).toBe(true);
        expect(hs.cert!.fingerprint256).toBe(new X509Certificate(before['server.pem']).fingerprint256);
      } finally {
        await second.cleanup();
      }
    } finally {
      await first.cleanup();
    }
  });

  it('keeps private keys and the admin token at mode 0600 (data dir 0700)', async () => {
    const dir = dataDir();
    const c = await spawnCentral({ dataDir: dir });
    try {
      for (const f of ['ca.key', 'server.key', 'signing.key', 'admin.token']) expect((statSync(join(dir, f)).mode & 0o777).toString(8), f).toBe('600');
      expect((statSync(dir).mode & 0o777).toString(8)).toBe('700');
      for (const f of ['store.json', ...journals(dir)]) expect((statSync(join(dir, f)).mode & 0o077), f).toBe(0);
    } finally {
      await c.cleanup();
    }
  });

  it('issues a server certificate covering localhost, 127.0.0.1, the listen address and the --public-url host; TLS verifies only with the CA', async () => {
    const dir = dataDir();
    const port = await freePort('127.0.0.2');
    const c = await spawnCentral({ dataDir: dir, listen: `127.0.0.2:${port}`, args: ['--public-url', 'https://central.underlay.test:9443'] });
    try {
      const cert = new X509Certificate(readFileSync(join(dir, 'server.pem')));
      const sans = cert.subjectAltName!.split(', ');
      expect(sans).toEqual(expect.arrayContaining(['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:127.0.0.2', 'DNS:central.underlay.test']));
      expect(cert.checkIssued(new X509Certificate(c.ca))).toBe(true);
      expect(cert.verify(new X509Certificate(c.ca).publicKey)).toBe(true);

      for (const servername of ['localhost', 'central.underlay.test']) {
        const ok = await handshake(port, { host: '127.0.0.2', ca: c.ca, servername });
        expect(ok, servername).toMatchObject({ authorized: true });
        expect(ok.cert!.checkHost(servername)).toBe(servername);
      }
      expect((await handshake(port, { host: '127.0.0.2', ca: c.ca })).authorized).toBe(true); // IP 127.0.0.2
      const untrusted = await handshake(port, { host: '127.0.0.2', servername: 'localhost' });
      expect(untrusted.authorized).toBe(false);
      expect(untrusted.error).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
      const wrongName = await handshake(port, { host: '127.0.0.2', ca: c.ca, servername: 'elsewhere.example' });
      expect(wrongName.authorized).toBe(false);
      expect(wrongName.error).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
      // The API over verified HTTPS; without the CA the request fails.
      expect((await c.request('GET', '/api/v1/sites')).status).toBe(200);
      await expect(c.request('GET', '/api/v1/sites', { ca: null })).rejects.toThrow();

      // Restart with a new public name: the certificate is re-issued by the same CA.
      const caBefore = readFileSync(join(dir, 'ca.pem'), 'utf8');
      expect((await c.stop()).code).toBe(0);
      const again = await spawnCentral({ dataDir: dir, listen: `127.0.0.2:${port}`, args: ['--public-url', 'https://other.underlay.test'] });
      try {
        expect(readFileSync(join(dir, 'ca.pem'), 'utf8')).toBe(caBefore);
        const reissued = new X509Certificate(readFileSync(join(dir, 'server.pem')));
        expect(reissued.subjectAltName).toContain('DNS:other.underlay.test');
        expect(reissued.checkIssued(new X509Certificate(caBefore))).toBe(true);
      } finally {
        await again.cleanup();
      }
    } finally {
      await c.cleanup();
    }
  });

  it('--insecure-http refuses a non-loopback listen address and serves plain HTTP on loopback', async () => {
    const refused = await spawnCentral({ dataDir: dataDir(), listen: '0.0.0.0:0', args: ['--insecure-http'], expectExit: true });
    expect(refused.exitInfo!.code).not.toBe(0);
    expect(refused.stderr).toMatch(/insecure-http.*loopback/);
    expect(refused.stdout).not.toContain('listening');

    const dir = dataDir();
    const c = await spawnCentral({ dataDir: dir, args: ['--insecure-http'] });
    try {
      expect(c.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const r = await httpCall(c.url, undefined, 'GET', '/api/v1/sites', { token: c.token });
      expect(r.status).toBe(200);
      expect((await httpCall(c.url, undefined, 'GET', '/api/v1/sites')).status).toBe(401);
    } finally {
      await c.cleanup();
    }
  });

  it('exits 0 on SIGTERM and releases its lock', async () => {
    const dir = dataDir();
    const c = await spawnCentral({ dataDir: dir });
    try {
      expect(await lockHolder(dir)).toMatchObject({ pid: c.pid, role: 'central' });
      const exit = await c.stop('SIGTERM');
      expect(exit).toEqual({ code: 0, signal: null });
      expect(lockSockets(dir)).toEqual([]);
      expect(await lockHolder(dir)).toBeNull();
    } finally {
      await c.cleanup();
    }
  });

  it('refuses a second central on the same data dir, naming the holder PID, and leaves the first one serving', async () => {
    const dir = dataDir();
    const first = await spawnCentral({ dataDir: dir });
    try {
      const second = await spawnCentral({ dataDir: dir, expectExit: true });
      expect(second.exitInfo!.code).not.toBe(0);
      expect(second.stderr).toContain(`in use by central process ${first.pid}`);
      expect(second.stderr.trim().split('\n').filter((l) => l.startsWith('error:'))).toHaveLength(1);
      expect(await lockHolder(dir)).toMatchObject({ pid: first.pid });
      expect((await first.request('GET', '/api/v1/sites')).status).toBe(200);
    } finally {
      await first.cleanup();
    }
  });

  it('takes over the lock left by a central killed with SIGKILL', async () => {
    const dir = dataDir();
    const first = await spawnCentral({ dataDir: dir });
    await first.kill();
    expect(lockSockets(dir)).toHaveLength(1); // left behind, but nobody listens on it
    const second = await spawnCentral({ dataDir: dir });
    try {
      expect(await lockHolder(dir)).toMatchObject({ pid: second.pid });
      expect((await second.request('GET', '/api/v1/sites')).status).toBe(200);
    } finally {
      await second.cleanup();
    }
  });
});

function journals(dir: string): string[] {
  return readdirSync(dir).filter((f) => /^journal\.\d+\.jsonl$/.test(f));
}
