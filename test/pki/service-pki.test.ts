// Issue 16 end to end, with runner PROCESSES instead of VMs (docs/pki.md "How it is tested"): a real
// central (host loopback) and a real agent in a network namespace (reaching the central through the
// lab's unix-socket forwarders), and two "machines": the real images/discovery/runner.sh under busybox
// sh, each in its own namespace on the agent's bridge with a 198.18.5.x address, so the SANs are real
// addresses. Everything the machines do comes as signed tasks:
//   - cert-request: each gets a certificate from CA `demo` (service `demo` members) with its address
//   - openssl s_server on m1 / s_client on m2 (run-script): mutual TLS with CRL checks succeeds
//   - `underlay pki certs revoke` of m1's certificate: the CRL reaches the agent, the handshake fails
//   - a CSR naming another machine's address is refused (and the task fails with the reason)
//   - a 90 s certificate is renewed by the runner before it expires (new serial, new key)
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetNs } from '../support/netns.js';
import { checkPrereqs } from '../support/require.js';
import { forwardCentral } from '../support/forward-central.js';
import { api, cleanEnv, CLI, getTask, joinAgent, killAllAgents, REPO, runCli, spawnCentral, waitFor, type CentralProcess } from '../agent-link/support.js';

const ready = checkPrereqs('service PKI lab (runner processes)', { root: true, commands: ['ip', 'busybox', 'curl', 'openssl'] });
const AGENT_IP = '198.18.5.1';
const MACHINES = [
  { name: 'm1', mac: '52:54:00:16:00:01', ip: '198.18.5.11' },
  { name: 'm2', mac: '52:54:00:16:00:02', ip: '198.18.5.12' },
] as const;

describe.skipIf(!ready)('service CAs and machine certificates (real central, agent and runners)', () => {
  const work = mkdtempSync(join(tmpdir(), 'ul-pki-lab-'));
  const procs: ChildProcess[] = [];
  let central: CentralProcess;
  let lab: NetNs;
  const ns: Record<string, NetNs> = {};
  const ids: Record<string, string> = {};
  const logs: Record<string, () => string> = {};
  let env: Record<string, string>;

  const cli = async (...args: string[]) => {
    const r = await runCli(['-o', 'json', ...args], { env });
    if (r.code !== 0) throw new Error(`underlay ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  };
  /** Queues a signed task for a machine and waits until it finished; returns the task. */
  async function task(machine: string, kind: string, payload: unknown, patienceMs = 90_000) {
    const t = await api<{ id: string }>(central, 'POST', '/api/v1/tasks', { site: 'dc1', kind, machine: ids[machine], payload, ttl: '10m' });
    let last: unknown;
    return waitFor(`task ${kind} on ${machine}`, async () => {
      const v = await getTask(central, t.id);
      last = v;
      return ['succeeded', 'failed', 'rejected', 'expired'].includes(v.state) ? v : undefined;
    }, patienceMs, 250).catch((e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify(last)}\nrunner ${machine}:\n${logs[machine]?.().slice(-3000)}\nagent:\n${logs.agent?.().slice(-3000)}`);
    });
  }
  const runScript = (machine: string, script: string) => task(machine, 'run-script', { scriptB64: Buffer.from(script).toString('base64'), timeoutSec: 60 });
  const certFile = (m: string, f: string) => join(work, m, 'certs', 'demo', f);
  const serialOf = (m: string) => readFileSync(certFile(m, 'serial'), 'utf8').trim();

  beforeAll(async () => {
    central = await spawnCentral();
    env = { UNDERLAY_URL: central.url, UNDERLAY_TOKEN: central.token, UNDERLAY_CA: central.caPath };
    await api(central, 'POST', '/api/v1/sites', { name: 'dc1' });
    for (const m of MACHINES) ids[m.name] = (await api<{ id: string }>(central, 'POST', '/api/v1/machines', { name: m.name, site: 'dc1', macs: [m.mac], address: m.ip })).id;
    for (const m of MACHINES) await api(central, 'POST', '/api/v1/services/demo/members', { machine: m.name, port: 8443 });
    await api(central, 'POST', '/api/v1/sites', { name: 'other' });

    // The namespace: the agent on a bridge, each machine in its own namespace behind a veth.
    lab = new NetNs('ulpki');
    lab.addBridge('br0', `${AGENT_IP}/24`);
    for (const m of MACHINES) {
      ns[m.name] = lab.addClient('br0', m.mac);
      ns[m.name].exec(['ip', 'addr', 'add', `${m.ip}/24`, 'dev', 'eth0']);
    }
    procs.push(...(await forwardCentral(lab, central.port, work)));

    const state = join(work, 'agent');
    await joinAgent(central, 'dc1', state, 'agent-pki');
    const boot = join(work, 'boot');
    mkdirSync(join(boot, 'discovery'), { recursive: true });
    for (const f of ['vmlinuz', 'initrd.img']) writeFileSync(join(boot, 'discovery', f), Buffer.alloc(1000, 7));
    const agent = lab.spawn([process.execPath, CLI, 'agent', 'run', '--state', state, '--interface', 'br0', '--address', AGENT_IP, '--dhcp', 'off', '--boot-dir', boot, '--ipxe-dir', join(work, 'ipxe')], {
      env: cleanEnv({ UNDERLAY_LOG_LEVEL: 'info' }),
    });
    let agentLog = '';
    agent.stdout!.setEncoding('utf8').on('data', (d: string) => (agentLog += d));
    agent.stderr!.setEncoding('utf8').on('data', (d: string) => (agentLog += d));
    logs.agent = () => agentLog;
    await waitFor('the agent serving HTTP with the site state', () => {
      try {
        return ns.m1.exec(['curl', '-sf', `http://${AGENT_IP}:8080/healthz`]) && agentLog.includes('desired state updated') ? true : undefined;
      } catch {
        return undefined;
      }
    }, 90_000, 500).catch((e) => { throw new Error(`${(e as Error).message}\n${agentLog.slice(-3000)}`); });

    // The runners: the boot token from the machine's own iPXE script, then lib.sh's claim and runner.sh.
    const pubkey = (JSON.parse(readFileSync(join(state, 'agent.json'), 'utf8')) as { signingPublicKey: string }).signingPublicKey;
    const bin = join(work, 'bin');
    mkdirSync(bin);
    for (const a of ['sh', 'cat', 'sleep', 'date', 'wc', 'tr', 'cut', 'sed', 'awk', 'tail', 'head', 'mkdir', 'rm', 'cp', 'mv', 'touch', 'kill', 'basename', 'dirname', 'sync', 'echo', 'timeout', 'base64', 'grep', 'chmod', 'ls'])
      symlinkSync('/bin/busybox', join(bin, a));
    for (const t of ['curl', 'openssl']) symlinkSync(execFileSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).trim(), join(bin, t));
    for (const m of MACHINES) {
      const dir = join(work, m.name);
      mkdirSync(join(dir, 'state'), { recursive: true });
      const script = await waitFor(`${m.name}'s boot script`, () => {
        try {
          return ns[m.name].exec(['curl', '-sf', `http://${AGENT_IP}:8080/ipxe/script?mac=${m.mac}&platform=pcbios&buildarch=x86_64`]);
        } catch {
          return undefined;
        }
      }, 30_000, 500);
      const token = /underlay\.token=([A-Za-z0-9_-]+)/.exec(script)?.[1];
      expect(token, script).toBeTruthy();
      writeFileSync(join(dir, 'cmdline'), `underlay.url=http://${AGENT_IP}:8080 underlay.token=${token} underlay.mac=${m.mac} underlay.pubkey=${pubkey} underlay.machine=${ids[m.name]}\n`);
      writeFileSync(join(dir, 'start.sh'), `. "$UNDERLAY_LIB"\nul_init_env\nul_claim || exit 1\nexec sh "$(dirname "$UNDERLAY_LIB")/runner.sh"\n`);
      const runnerEnv = {
        PATH: bin,
        UNDERLAY_LIB: join(REPO, 'images/discovery/lib.sh'),
        UNDERLAY_STATE: join(dir, 'state'),
        UNDERLAY_CMDLINE_FILE: join(dir, 'cmdline'),
        UNDERLAY_CERT_DIR: join(dir, 'certs'),
        UNDERLAY_NO_CONSOLE: '1',
        UNDERLAY_POLL_WAIT: '2',
        UNDERLAY_POWER_CMD: 'echo',
      };
      // `ip netns exec` needs the host's PATH; the runner gets only busybox, curl and openssl.
      const p = ns[m.name].spawn(['/usr/bin/env', '-i', ...Object.entries(runnerEnv).map(([k, v]) => `${k}=${v}`), '/bin/busybox', 'sh', join(dir, 'start.sh')]);
      let log = '';
      p.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
      p.stdout!.resume();
      logs[m.name] = () => log;
      writeFileSync(join(dir, 'pid'), String(p.pid));
    }
  }, 240_000);

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    lab?.destroy(); // kills the agent, forwarder and runners it spawned
    await killAllAgents();
    await central?.cleanup();
    if (!process.env.UL_KEEP) rmSync(work, { recursive: true, force: true });
  });

  it('creates CA demo with the CLI; each member gets a certificate with its real address, key made on the machine', async () => {
    const ca = await cli('pki', 'ca', 'create', 'demo', '--max-cert-ttl', '1d', '--domain', 'demo.example');
    expect(ca).toMatchObject({ name: 'demo', keyType: 'ec-p256', service: 'demo' });
    for (const m of MACHINES) {
      const t = await task(m.name, 'cert-request', { ca: 'demo' });
      expect(t.state, JSON.stringify(t)).toBe('succeeded');
      const cert = readFileSync(certFile(m.name, 'cert.pem'), 'utf8');
      const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: cert, encoding: 'utf8' });
      expect(text).toContain(`IP Address:${m.ip}`);
      expect(text).toContain(`DNS:${m.name}.demo.example`);
      // The key never left the machine: the central has only the certificate, which matches that key.
      expect(execFileSync('openssl', ['x509', '-noout', '-pubkey'], { input: cert, encoding: 'utf8' })).toBe(execFileSync('openssl', ['pkey', '-pubout', '-in', certFile(m.name, 'key.pem')], { encoding: 'utf8' }));
      expect(readFileSync(certFile(m.name, 'ca.pem'), 'utf8')).toBe(ca.certificate);
    }
    const listed = await cli('pki', 'certs', 'list', 'demo');
    expect(listed.items.map((c: { machineName: string }) => c.machineName).sort()).toEqual(['m1', 'm2']);
    // The CA is in the inventory: all.vars lists it, each member's hostvars carry its service's bundle.
    const inv = await api<{ all: { vars: Record<string, Record<string, { fingerprint: string }>> }; _meta: { hostvars: Record<string, { underlay_ca_bundles?: Record<string, string> }> } }>(central, 'GET', '/api/v1/inventory');
    expect(inv.all.vars.underlay_service_cas!.demo!.fingerprint).toBe(ca.fingerprint);
    const pem = ca.certificate.endsWith('\n') ? ca.certificate : `${ca.certificate}\n`;
    for (const m of MACHINES) expect(inv._meta.hostvars[m.name]!.underlay_ca_bundles).toEqual({ demo: pem });
    expect(JSON.stringify(inv)).not.toContain('sealedKey');
  }, 200_000);

  const SERVER = (crl: boolean) => `cd "$UNDERLAY_CERT_DIR/demo"
timeout 40 openssl s_server -accept ${MACHINES[0].ip}:8443 -naccept 1 -cert cert.pem -key key.pem -CAfile ca.pem -Verify 1 -verify_return_error ${crl ? '-crl_check -CRL crl.pem' : ''} -www </dev/null
`;
  const CLIENT = `cd "$UNDERLAY_CERT_DIR/demo"
curl -sf "$UNDERLAY_URL/api/v1/pki/demo/crl.pem" -o crl.pem || exit 3
n=0; while [ $n -lt 50 ]; do
  timeout 20 openssl s_client -connect ${MACHINES[0].ip}:8443 -verify_ip ${MACHINES[0].ip} -cert cert.pem -key key.pem -CAfile ca.pem -verify_return_error -crl_check -CRL crl.pem </dev/null >out 2>err && { echo HANDSHAKE-OK; grep -i 'verify return\\|subject=' out; exit 0; }
  grep -q 'Connection refused\\|connect:errno' err || { cat out err; exit 1; }
  n=$((n + 1)); sleep 0.2
done
exit 2
`;

  it('mutual TLS between the two members (openssl s_server / s_client as signed tasks) succeeds', async () => {
    const server = runScript('m1', SERVER(true));
    const client = await runScript('m2', CLIENT);
    expect(client.state, client.output).toBe('succeeded');
    expect(client.output).toContain('HANDSHAKE-OK');
    expect((await server).state).toBe('succeeded');
  }, 200_000);

  it('after m1’s certificate is revoked and the CRL has reached the agent, the handshake fails', async () => {
    const serial = serialOf('m1');
    const crlBefore = ns.m2.exec(['curl', '-sf', `http://${AGENT_IP}:8080/api/v1/pki/demo/crl.pem`]);
    const revoked = await cli('pki', 'certs', 'revoke', serial);
    expect(revoked.status).toBe('revoked');
    await waitFor('the new CRL at the agent', () => {
      const crl = ns.m2.exec(['curl', '-sf', `http://${AGENT_IP}:8080/api/v1/pki/demo/crl.pem`]);
      return crl !== crlBefore && execFileSync('openssl', ['crl', '-noout', '-text'], { input: crl, encoding: 'utf8' }).toLowerCase().includes(serial.toLowerCase()) ? true : undefined;
    }, 30_000, 250);
    const server = runScript('m1', SERVER(false)); // the server still presents its (now revoked) certificate
    const client = await runScript('m2', CLIENT);
    expect(client.state).toBe('failed');
    expect(client.output).not.toContain('HANDSHAKE-OK');
    expect(client.output).toMatch(/certificate revoked/);
    await server;
  }, 200_000);

  it('a CSR naming what the machine is not (m2’s address, a foreign name) is refused', async () => {
    const before = (await cli('pki', 'certs', 'list')).items.length;
    const t = await task('m1', 'cert-request', { ca: 'demo', sans: ['m1', MACHINES[1].ip, 'evil.example'] });
    expect(t.state).toBe('failed');
    expect(t.output).toContain('refused');
    expect(t.output).toContain(MACHINES[1].ip);
    expect((await cli('pki', 'certs', 'list')).items.length).toBe(before);
  }, 120_000);

  it('a short-lived certificate is renewed by the runner before it expires', async () => {
    const t = await task('m2', 'cert-request', { ca: 'demo', ttl: '90s' });
    expect(t.state).toBe('succeeded');
    const first = serialOf('m2');
    const firstKey = readFileSync(certFile('m2', 'key.pem'), 'utf8');
    const notAfter = Date.parse(execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', certFile('m2', 'cert.pem')], { encoding: 'utf8' }).replace('notAfter=', '').trim());
    const renewed = await waitFor('renewal', () => (serialOf('m2') !== first ? serialOf('m2') : undefined), 100_000, 500);
    expect(Date.now()).toBeLessThan(notAfter);
    expect(readFileSync(certFile('m2', 'key.pem'), 'utf8')).not.toBe(firstKey);
    const cert = (await api<{ notAfter: string; sans: string[]; status: string }>(central, 'GET', `/api/v1/pki/certs/${renewed}`));
    expect(cert.status).toBe('valid');
    expect(cert.sans).toContain(MACHINES[1].ip);
  }, 200_000);
});
