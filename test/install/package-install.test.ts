import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execStartOf } from '../../shared/systemd/unit.js';
import { checkPrereqs } from '../support/require.js';
import { REPO, cleanEnv, freePort, HOST_AGENT_ENV, httpCall, requireBuild, tempDir } from '../central/support.js';

const run = promisify(execFile);

/**
 * Issue 19, packaging and install: `npm pack` → install the tarball into a clean prefix → `underlay --help`
 * from it → the central's and the agent's units pass `systemd-analyze verify` → `agent install --root`
 * joins and writes the unit → what each unit's ExecStart runs starts (the central answers /healthz; the
 * agent links to it). Processes, not a VM; no systemd needed (it is not PID 1 in CI's container).
 */
const ready = checkPrereqs('install/package', { commands: ['npm', 'systemd-analyze'] });

describe.skipIf(!ready)('the packed tarball, installed', () => {
  let dir: string;
  let bin: string;
  let tarball: string;
  const children: ChildProcess[] = [];
  let central: { url: string; ca: string; token: string; data: string };
  let files: string[];

  const underlay = (args: string[], env: Record<string, string> = {}) => run(bin, args, { env: cleanEnv(env), encoding: 'utf8', timeout: 60_000 }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: Number(e.code ?? 1), stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );
  /** Starts a unit's ExecStart with %S (the state root) pointed into the test's directory. */
  const startExec = (unit: string, stateRoot: string, env: Record<string, string>): { child: ChildProcess; log: () => string } => {
    const [cmd, ...args] = execStartOf(unit).map((w) => w.replace('%S', stateRoot));
    const child = spawn(cmd!, args, { env: cleanEnv({ UNDERLAY_LOG_LEVEL: 'info', ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let log = '';
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    return { child, log: () => log };
  };
  const until = async (what: string, ok: () => Promise<boolean>, ms = 30_000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await ok().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  beforeAll(async () => {
    requireBuild();
    dir = tempDir('underlay-package-');
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
    const packed = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    tarball = join(dir, packed[0]!.filename);
    files = packed[0]!.files.map((f) => f.path);
    // The registry is allowed (the tarball's dependencies); the local cache first.
    await run('npm', ['install', '--prefix', join(dir, 'prefix'), tarball, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--omit=dev'], { encoding: 'utf8', timeout: 240_000 });
    bin = join(dir, 'prefix/node_modules/.bin/underlay');
  }, 300_000);
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('holds what runs and nothing of the tests or the TypeScript sources', () => {
    expect(files).toContain('dist/shared/cli/underlay.js');
    expect(files).toContain('dist/agent/cli.js');
    expect(files).toContain('dist/central/cli.js');
    expect(files.some((f) => f.startsWith('images/bootenvs/'))).toBe(true);
    expect(files).toContain('agent/tftp/native/build/Release/underlay_tftp.node');
    expect(files.some((f) => f.startsWith('scripts/ansible/collections/'))).toBe(true);
    expect(files).toContain('scripts/images/build-debian.sh');
    const unwanted = files.filter((f) => /\.test\.js$|\.test-support\.js$|\.ts$|\.map$|^test\/|^dist\/test\/|^dist\/scripts\/bench\/|fixture|fake-|sample-/.test(f));
    expect(unwanted).toEqual([]);
  });

  it('installs into a clean prefix and `underlay --help` runs from it', async () => {
    const r = await underlay(['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: underlay');
    expect(r.stdout).toMatch(/central\s+the central registry/);
    expect(r.stdout).toMatch(/agent\s+the site agent/);
    expect(r.stdout).toContain('Exit codes:');
  });

  it("the central's unit passes systemd-analyze verify and its ExecStart serves", async () => {
    const unit = (await underlay(['central', 'unit'])).stdout;
    expect(unit).toMatch(/^DynamicUser=yes$/m);
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
    expect(unit).toMatch(/^StateDirectory=underlay-central$/m);
    expect(unit).toMatch(/^NoNewPrivileges=yes$/m);
    expect(unit).toMatch(/^CapabilityBoundingSet=$/m);
    writeFileSync(join(dir, 'underlay-central.service'), unit);
    const v = await run('systemd-analyze', ['verify', join(dir, 'underlay-central.service')], { encoding: 'utf8' });
    expect(v.stderr + v.stdout).toBe('');
    expect(execStartOf(unit)[1]).toBe(join(dir, 'prefix/node_modules/underlay/dist/shared/cli/underlay.js'));

    const port = await freePort();
    const stateRoot = join(dir, 'central-state');
    mkdirSync(stateRoot);
    const url = `https://127.0.0.1:${port}`;
    const proc = startExec(unit, stateRoot, { UNDERLAY_LISTEN: `127.0.0.1:${port}`, UNDERLAY_PUBLIC_URL: url });
    const data = join(stateRoot, 'underlay-central');
    await until('the central from the installed package to answer /healthz', async () => existsSync(join(data, 'ca.pem')) && (await httpCall(url, readFileSync(join(data, 'ca.pem'), 'utf8'), 'GET', '/healthz')).status === 200).catch((e) => {
      throw new Error(`${(e as Error).message}\n${proc.log()}`);
    });
    central = { url, ca: join(data, 'ca.pem'), token: readFileSync(join(data, 'admin.token'), 'utf8').trim(), data };
  }, 60_000);

  it('`agent install --root` joins and writes the unit (it passes verify); the unit\'s ExecStart links to the central', async () => {
    const api = { UNDERLAY_URL: central.url, UNDERLAY_CA: central.ca, UNDERLAY_TOKEN: central.token };
    expect((await underlay(['sites', 'create', 'dc1'], api)).code).toBe(0);
    const token = (await underlay(['token', 'create', '--role', 'agent-join', '--site', 'dc1', '-o', 'table'], api)).stdout.trim();
    expect(token).toMatch(/^ul/);

    const root = join(dir, 'root');
    const missing = await underlay(['agent', 'install', '--root', root]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/--token is required/);
    expect(existsSync(join(root, 'etc/systemd/system/underlay-agent.service'))).toBe(false);

    // No systemd as PID 1 here (as in CI's container, and in an image root): it joins, writes, says so, exits 6.
    const r = await underlay(['agent', 'install', '--root', root, '--token', token, '--central', central.url, '--dhcp', 'off']);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stdout).toMatch(/joined: agent \S+ at site dc1/);
    expect(r.stdout).toMatch(/not started: systemd is not running here/);
    expect(r.stdout).toMatch(/the unit and the joined state are in place/);
    const unitPath = join(root, 'etc/systemd/system/underlay-agent.service');
    const unit = readFileSync(unitPath, 'utf8');
    expect(unit).toMatch(/^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
    expect(unit).toMatch(/^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
    expect(unit).toMatch(/^StateDirectory=underlay-agent$/m);
    expect(readFileSync(join(root, 'etc/default/underlay-agent'), 'utf8')).toContain('UNDERLAY_DHCP="off"');
    expect(statSync(join(root, 'var/lib/underlay-agent')).mode & 0o777).toBe(0o700);
    const v = await run('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' });
    expect(v.stderr + v.stdout).toBe('');

    // What systemd would run: ExecStart with %S = <root>/var/lib and the env file's settings.
    const proc = startExec(unit, join(root, 'var/lib'), { UNDERLAY_DHCP: 'off', ...HOST_AGENT_ENV });
    await until('the installed agent to link to the central', async () => {
      const res = await httpCall(central.url, readFileSync(central.ca, 'utf8'), 'GET', '/api/v1/agents', { token: central.token });
      return (res.json as { items: { site: string; connected: boolean }[] }).items.some((a) => a.site === 'dc1' && a.connected);
    }).catch((e) => {
      throw new Error(`${(e as Error).message}\n${proc.log()}`);
    });
    proc.child.kill('SIGTERM');
    const code = await new Promise<number | null>((res) => proc.child.once('exit', (c) => res(c)));
    expect(code).toBe(0);
  }, 90_000);
});
