// The discovery image end to end: build it, boot it once in QEMU (software emulation, direct kernel boot)
// on a bridge inside a network namespace, against a stand-in agent, and check what comes back:
// hardware facts, a signed task's output and exit code, refusals (bad signature, expired, replay), and
// the console line. One boot covers everything; a final signed `poweroff` task ends the VM. The build's
// own checks (cache, reproducible bytes) are in discovery-build.test.ts, off the QEMU lane.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sodium from 'libsodium-wrappers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetNs } from '../support/netns.js';
import { checkPrereqs } from '../support/require.js';
import { buildDiscovery as build, REPO, type Built } from './discovery-image.js';

const ready = checkPrereqs('discovery image', {
  root: true,
  commands: ['qemu-system-x86_64', 'qemu-img', 'busybox', 'openssl', 'apt-get', 'dpkg-deb', 'ip', 'perl', 'xz'],
  files: ['/bin/busybox'],
});

// --- test-local canonical JSON + signing (docs/agent-http.md) ------------------------------------------
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
interface Wire {
  canonical: string;
  signature: string;
}
function sign(envelope: Record<string, unknown>, secretKey: Uint8Array): Wire {
  const bytes = Buffer.from(canonical(envelope), 'utf8');
  return {
    canonical: bytes.toString('base64'),
    signature: Buffer.from(sodium.crypto_sign_detached(bytes, secretKey)).toString('base64'),
  };
}

const jsonl = <T>(f: string): T[] =>
  existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T) : [];

interface Facts {
  system: { uuid: string; serial: string; vendor: string; product: string };
  firmware: string;
  cpu: { model: string; sockets: number; cores: number; threads: number };
  memory: { totalBytes: number };
  disks: { name: string; sizeBytes: number; model: string; serial: string; rotational: boolean }[];
  nics: { name: string; mac: string; driver: string; link: boolean; speedMbps: number | null }[];
  bmc?: { address: string };
  bootMac: string;
}
interface Event {
  id: string;
  body: { state: string; output?: string; exitCode?: number };
}

describe.skipIf(!ready)('discovery image', () => {
  const work = mkdtempSync(join(tmpdir(), 'ul-discovery-'));
  const out = join(work, 'agent');
  mkdirSync(out);
  let image: Built;
  let ns: NetNs | undefined;

  // What the VM is given; every assertion below is derived from these.
  const vm = {
    mac: '52:54:00:5a:1e:07',
    uuid: '6b1e2f9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
    serial: 'UL-DISC-0001',
    memMiB: 512,
    cpus: 2,
    diskSerial: 'ULDISK0001',
    diskBytes: 1088 * 1024 * 1024,
  };
  const token = 'tok-' + Math.random().toString(36).slice(2);
  const machine = 'm-discovery-test';
  const agentUrl = 'http://198.18.0.1:8080';
  const serialLog = join(work, 'serial.log');
  const ids = { good: 'task-good-1', failing: 'task-fail-2', wrongKey: 'task-badsig-3', tampered: 'task-badsig-4', expired: 'task-expired-5', off: 'task-poweroff-6', old: 'task-old-7' };
  // The agent tells the claim that it handed tasks up to this sequence to an earlier boot of the machine.
  const seqFloor = 5;
  const goodOutputLine = 'hello "quoted" \\ back\ttab \u00e9';
  let qemuExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  beforeAll(async () => {
    image = build();

    await sodium.ready;
    const key = sodium.crypto_sign_keypair();
    const otherKey = sodium.crypto_sign_keypair();
    const now = Date.now();
    const envelope = (id: string, kind: string, payload: Record<string, unknown>, over: Record<string, unknown> = {}) => ({
      v: 1,
      id,
      site: 'site-test',
      agent: 'agent-test',
      seq: 10,
      kind,
      machine,
      payload,
      issuedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 6 * 3600_000).toISOString(),
      ...over,
    });
    const script = (s: string) => ({ scriptB64: Buffer.from(s).toString('base64'), timeoutSec: 120 });
    const marker = (name: string) => `wget -q -O /dev/null ${agentUrl}/marker/${name}`;

    const good = sign(envelope(ids.good, 'run-script', script(`printf '%s\\n' '${goodOutputLine}'\n${marker('good')}\necho done\n`)), key.privateKey);
    const tamperedSrc = sign(envelope(ids.tampered, 'run-script', script('echo harmless')), key.privateKey);
    const tamperedBytes = Buffer.from(canonical(envelope(ids.tampered, 'run-script', script(`${marker('tampered')}\necho BAD-TASK-RAN`))));
    const tasks: Wire[] = [
      good,
      sign(envelope(ids.wrongKey, 'run-script', script(`${marker('wrong-key')}\necho BAD-TASK-RAN`)), otherKey.privateKey),
      { canonical: tamperedBytes.toString('base64'), signature: tamperedSrc.signature },
      good, // replayed: must not run again
      // A genuine, unexpired task an earlier boot already received (seq at or below the floor): a replay.
      sign(envelope(ids.old, 'run-script', script(`${marker('old')}\n`), { seq: seqFloor }), key.privateKey),
      sign(envelope(ids.failing, 'run-script', script('echo "about to fail" >&2\nexit 3\n')), key.privateKey),
      sign(envelope(ids.expired, 'run-script', script(`${marker('expired')}\n`), { expiresAt: new Date(now - 60_000).toISOString() }), key.privateKey),
      sign(envelope(ids.off, 'poweroff', {}), key.privateKey),
    ];
    writeFileSync(join(work, 'tasks.json'), JSON.stringify(tasks));

    ns = new NetNs('uldisc');
    ns.addBridge('br0', '198.18.0.1/24');
    ns.addTap('tap0', 'br0');
    writeFileSync(
      join(work, 'udhcpd.conf'),
      [
        'start 198.18.0.100',
        'end 198.18.0.150',
        'interface br0',
        `lease_file ${join(work, 'udhcpd.leases')}`,
        `pidfile ${join(work, 'udhcpd.pid')}`,
        'option subnet 255.255.255.0',
        'option lease 3600',
        '',
      ].join('\n'),
    );
    writeFileSync(join(work, 'udhcpd.leases'), '');
    ns.spawn(['busybox', 'udhcpd', '-f', join(work, 'udhcpd.conf')], { stdio: 'ignore' });

    const agent = ns.spawn(
      ['node', 'test/discovery/stand-in-agent.mjs', '--host', '198.18.0.1', '--port', '8080', '--dir', out, '--token', token, '--tasks', join(work, 'tasks.json'), '--machine', machine, '--seq-floor', String(seqFloor), '--agent-id', 'agent-test'],
      { cwd: REPO },
    );
    await waitForLine(agent, 'listening');

    const disk = join(work, 'disk.img');
    execFileSync('qemu-img', ['create', '-f', 'raw', disk, String(vm.diskBytes)], { stdio: 'ignore' });
    const pubkey = Buffer.from(key.publicKey).toString('base64');
    const qemu = ns.spawn(
      [
        'qemu-system-x86_64',
        '-nodefaults', '-display', 'none', '-no-reboot',
        '-m', String(vm.memMiB), '-smp', String(vm.cpus),
        '-uuid', vm.uuid, '-smbios', `type=1,serial=${vm.serial}`,
        '-kernel', join(image.dir, 'vmlinuz'), '-initrd', join(image.dir, 'initrd.img'),
        '-append', `underlay.url=${agentUrl} underlay.token=${token} underlay.mac=${vm.mac} underlay.pubkey=${pubkey} console=ttyS0`,
        '-serial', `file:${serialLog}`,
        '-device', 'ahci,id=ahci',
        '-drive', `file=${disk},format=raw,if=none,id=d0`,
        '-device', `ide-hd,drive=d0,bus=ahci.0,serial=${vm.diskSerial}`,
        '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no',
        '-device', `e1000,netdev=n0,mac=${vm.mac}`,
      ],
      { stdio: 'ignore' },
    );
    // No time limit here: the guest ends itself with the signed poweroff task; the hook timeout guards hangs.
    qemuExit = await new Promise((res) => qemu.on('exit', (code, signal) => res({ code, signal })));
  }, 1_200_000);

  afterAll(() => {
    ns?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  it('the VM powered itself off through the signed poweroff task', () => {
    expect(qemuExit).toEqual({ code: 0, signal: null });
    const ev = jsonl<Event>(join(out, 'events.jsonl')).filter((e) => e.id === ids.off);
    expect(ev.map((e) => e.body.state)).toEqual(['succeeded']);
  });

  it('reports hardware facts that match the QEMU configuration', () => {
    const facts = JSON.parse(readFileSync(join(out, 'discovery.json'), 'utf8')) as Facts;
    expect(facts.bootMac).toBe(vm.mac);
    expect(facts.system.uuid).toBe(vm.uuid);
    expect(facts.system.serial).toBe(vm.serial);
    expect(facts.system.vendor).toBe('QEMU');
    expect(facts.firmware).toBe('bios');
    expect(facts.cpu.threads).toBe(vm.cpus);
    expect(facts.cpu.sockets * facts.cpu.cores).toBeGreaterThan(0);
    expect(facts.cpu.model.length).toBeGreaterThan(0);
    const mem = vm.memMiB * 1024 * 1024;
    expect(Math.abs(facts.memory.totalBytes - mem) / mem).toBeLessThan(0.05);
    expect(facts.disks).toHaveLength(1);
    expect(facts.disks[0].sizeBytes).toBe(statSync(join(work, 'disk.img')).size);
    expect(facts.disks[0].serial).toBe(vm.diskSerial);
    const nic = facts.nics.find((n) => n.mac === vm.mac);
    expect(nic).toMatchObject({ driver: 'e1000', link: true });
    expect(facts.bmc).toBeUndefined();
    const req = jsonl<{ path: string; authed: boolean; contentType: string | null }>(join(out, 'requests.jsonl')).filter((r) => r.path === '/api/v1/discovery');
    expect(req.every((r) => r.authed && r.contentType === 'application/json')).toBe(true);
  });

  it('prints exactly one clear discovery line on the console', () => {
    const facts = JSON.parse(readFileSync(join(out, 'discovery.json'), 'utf8')) as Facts;
    const expected =
      `underlay: discovered ${vm.mac} (uuid ${vm.uuid}, ${vm.cpus} cpus, ${Math.floor(facts.memory.totalBytes / 1048576)} MiB, ` +
      `${facts.disks.length} disks) reported to ${agentUrl}`;
    const lines = readFileSync(serialLog, 'utf8').split(/\r?\n/);
    expect(lines.filter((l) => l.startsWith('underlay: discovered'))).toEqual([expected]);
  });

  it('runs a correctly signed script once and reports its output and exit code', () => {
    const events = jsonl<Event>(join(out, 'events.jsonl'));
    const good = events.filter((e) => e.id === ids.good);
    expect(good.filter((e) => e.body.state === 'running')).toHaveLength(1);
    const final = good.find((e) => e.body.state === 'succeeded');
    expect(final?.body.exitCode).toBe(0);
    expect(final?.body.output).toBe(`${goodOutputLine}\ndone\n`);
    const failing = events.filter((e) => e.id === ids.failing).map((e) => e.body);
    expect(failing).toEqual([{ state: 'running' }, { state: 'failed', exitCode: 3, output: 'about to fail\n' }]);
    // The replayed envelope did not run a second time.
    expect(jsonl<{ name: string }>(join(out, 'markers.jsonl')).filter((m) => m.name === 'good')).toHaveLength(1);
  });

  it('never runs a task whose signature fails, and reports it bad-signature', () => {
    const events = jsonl<Event>(join(out, 'events.jsonl'));
    for (const id of [ids.wrongKey, ids.tampered]) {
      expect(events.filter((e) => e.id === id).map((e) => e.body)).toEqual([{ state: 'failed', output: 'bad-signature' }]);
    }
    const markers = jsonl<{ name: string }>(join(out, 'markers.jsonl')).map((m) => m.name);
    expect(markers).not.toContain('wrong-key');
    expect(markers).not.toContain('tampered');
    expect(readFileSync(serialLog, 'utf8')).not.toContain('BAD-TASK-RAN');
  });

  it('claims the boot token once and uses the session for everything after', () => {
    expect(jsonl<{ ok: boolean }>(join(out, 'claims.jsonl'))).toEqual([{ ok: true, tokenMatches: true }]);
    const reqs = jsonl<{ path: string; authed: boolean }>(join(out, 'requests.jsonl')).filter((r) => r.path.startsWith('/api/v1/') && r.path !== '/api/v1/boot/claim');
    expect(reqs.length).toBeGreaterThan(3);
    expect(reqs.every((r) => r.authed)).toBe(true);
  });

  it('refuses a task at or below the replay floor the claim gave (replay across reboots)', () => {
    const events = jsonl<Event>(join(out, 'events.jsonl'));
    expect(events.filter((e) => e.id === ids.old).map((e) => e.body)).toEqual([{ state: 'failed', output: 'replay' }]);
    expect(jsonl<{ name: string }>(join(out, 'markers.jsonl')).map((m) => m.name)).not.toContain('old');
  });

  it('refuses an expired task without running it', () => {
    const events = jsonl<Event>(join(out, 'events.jsonl'));
    expect(events.filter((e) => e.id === ids.expired).map((e) => e.body)).toEqual([{ state: 'failed', output: 'expired' }]);
    expect(jsonl<{ name: string }>(join(out, 'markers.jsonl')).map((m) => m.name)).not.toContain('expired');
  });
});

function waitForLine(p: ChildProcess, text: string): Promise<void> {
  return new Promise((res, rej) => {
    let buf = '';
    let err = '';
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(text)) res();
    });
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => rej(new Error(`process exited (${code}) before printing "${text}": ${err}`)));
  });
}
