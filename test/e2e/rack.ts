/**
 * A virtual rack for real-firmware boot tests: a network namespace with bridge br0 (198.18.0.1/24), a real
 * central (`underlay central serve`) and a real site agent (`underlay agent join` + `underlay agent run`)
 * started through the CLI exactly as a user would, the site, its subnets and the boot environment library
 * created/imported through the CLI, and QEMU machines (SeaBIOS + iPXE ROM, or OVMF) on taps.
 *
 * Everything it starts is killed by PID and every namespace and temp dir removed by `destroy()`, which is
 * safe to call after a partial start. Network traffic stays inside the namespaces (198.18.0.0/15) and on
 * the namespace's loopback (the central listens on 127.0.0.1 inside the rack namespace).
 *
 * Uses the built CLI (`dist/`): run `npm run build` first (`npm test` does).
 */
import { execFile, execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NetNs } from '../support/netns.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const CLI = join(REPO, 'dist/shared/cli/underlay.js');
export const AGENT_ADDRESS = '198.18.0.1';
export const CENTRAL_PORT = 8443;
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS.fd';
const BUILD_DISCOVERY = join(REPO, 'scripts/images/build-discovery.sh');

/** What every file here needs (for `checkPrereqs`). */
export const RACK_PREREQS = {
  root: true,
  commands: ['ip', 'qemu-system-x86_64', 'busybox', 'openssl', 'apt-get', 'dpkg-deb', 'perl', 'xz', 'ipmitool'],
  files: [CLI, '/usr/lib/ipxe/undionly.kpxe', '/usr/lib/ipxe/ipxe.efi', '/usr/lib/ipxe/snponly.efi', '/bin/busybox'],
};

// ---- polling ----------------------------------------------------------------------------------------------

/**
 * Polls `fn` until it returns something other than undefined/false/null. `timeoutMs` is hang protection
 * only (a generous bound on a stuck boot), not an assertion about speed; `fn` may throw to fail early (e.g.
 * when the VM it waits for has exited). `diag` adds context (log tails) to the timeout error.
 */
export async function until<T>(fn: () => T | undefined | false | null, what: string, timeoutMs: number, opts: { intervalMs?: number; diag?: () => string } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} (hang protection: ${Math.round(timeoutMs / 1000)} s)${opts.diag ? `\n${opts.diag()}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
  }
}

// ---- the discovery image (built once, cached by the build script) -------------------------------------

let discoveryCache: string | undefined;

/** Builds (or finds in the cache) the discovery image; returns the directory with vmlinuz + initrd.img. */
export function discoveryImage(): string {
  if (discoveryCache) return discoveryCache;
  const r = spawnSync('bash', [BUILD_DISCOVERY], { cwd: REPO, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`build-discovery.sh failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  const dir = r.stdout.trim().split('\n').pop()!;
  for (const f of ['vmlinuz', 'initrd.img']) if (!existsSync(join(dir, f))) throw new Error(`build-discovery.sh printed ${dir}, which has no ${f}`);
  discoveryCache = dir;
  return dir;
}

// ---- log files --------------------------------------------------------------------------------------------

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** The JSON (pino) lines of a log file; other lines are skipped. */
export function jsonLines(file: string): LogLine[] {
  if (!existsSync(file)) return [];
  const out: LogLine[] = [];
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as LogLine);
    } catch {
      /* a line being written */
    }
  }
  return out;
}

const tail = (file: string, chars = 4000) => (existsSync(file) ? readFileSync(file, 'utf8').slice(-chars) : '(no file)');

// ---- the rack -----------------------------------------------------------------------------------------

export interface SubnetSpec {
  cidr: string;
  range: string;
  gateway: string;
  leaseTime?: string;
}

export interface RackOptions {
  /** Namespace name prefix (short: interface names derive from it). */
  prefix?: string;
  /** The agent's DHCP mode. */
  dhcp: 'full' | 'proxy' | 'off';
  /** Subnets of the site (default: 198.18.0.0/24, range .100–.199, gateway 198.18.0.1). */
  subnets?: SubnetSpec[];
  /** A second segment behind a router namespace running dhcrelay (198.18.1.0/24 on br1). */
  relay?: boolean;
  /** Serve the discovery image at /files/discovery/ (default true). */
  discovery?: boolean;
  /** Runs inside the rack namespace before the agent starts (e.g. the site's own DHCP server). */
  beforeAgent?: (rack: Rack) => void | Promise<void>;
  /** UNDERLAY_LOG_LEVEL for the agent (default info). */
  agentLogLevel?: string;
  /** More UNDERLAY_* settings for the agent (e.g. the power poll interval). */
  agentEnv?: NodeJS.ProcessEnv;
}

export const DEFAULT_SUBNET: SubnetSpec = { cidr: '198.18.0.0/24', range: '198.18.0.100-198.18.0.199', gateway: AGENT_ADDRESS, leaseTime: '10m' };
export const RELAY_SUBNET: SubnetSpec = { cidr: '198.18.1.0/24', range: '198.18.1.100-198.18.1.199', gateway: '198.18.1.1', leaseTime: '10m' };
export const SITE = 'rack1';

export class Rack {
  readonly work: string;
  readonly ns: NetNs;
  /** Router namespace between br0 and the relayed segment br1 (only with `relay`). */
  router?: NetNs;
  readonly centralLog: string;
  readonly agentLog: string;
  readonly vms: Vm[] = [];
  private env: NodeJS.ProcessEnv = {};
  private procs: ChildProcess[] = [];
  private tapSeq = 0;
  /** The central's and the agent's processes and how they were started (to kill and start them again). */
  private central?: { proc: ChildProcess; argv: string[] };
  private agent?: { proc: ChildProcess; argv: string[]; env: NodeJS.ProcessEnv };

  private readonly onExit = () => this.destroy();

  private constructor(readonly opts: RackOptions) {
    this.work = mkdtempSync(join(tmpdir(), 'ul-e2e-'));
    this.centralLog = join(this.work, 'central.log');
    this.agentLog = join(this.work, 'agent.log');
    this.ns = new NetNs(opts.prefix ?? 'ulrk');
    // Safety net if the test process ends without afterAll (everything in destroy() is synchronous).
    process.once('exit', this.onExit);
  }

  /** Builds the whole rack; on any failure everything started so far is torn down and the error rethrown. */
  static async start(opts: RackOptions): Promise<Rack> {
    const rack = new Rack(opts);
    try {
      await rack.setUp();
      return rack;
    } catch (e) {
      const diag = `\n--- central log (tail) ---\n${tail(rack.centralLog)}\n--- agent log (tail) ---\n${tail(rack.agentLog)}`;
      rack.destroy();
      throw new Error(`${(e as Error).message}${diag}`);
    }
  }

  private async setUp(): Promise<void> {
    const { ns, opts } = this;
    const t0 = Date.now();
    const phase = (what: string) => process.stderr.write(`rack ${ns.name}: ${what} after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    ns.addBridge('br0', `${AGENT_ADDRESS}/24`);
    if (opts.relay) this.addRelaySegment();

    // Boot files: discovery/vmlinuz + discovery/initrd.img, copies of the cached build output (the agent
    // refuses symlinks that leave its boot directory).
    const bootDir = join(this.work, 'boot');
    mkdirSync(join(bootDir, 'discovery'), { recursive: true });
    if (opts.discovery !== false) {
      const img = discoveryImage();
      for (const f of ['vmlinuz', 'initrd.img']) copyFileSync(join(img, f), join(bootDir, 'discovery', f));
    }

    phase('discovery image ready');
    // The central, on the namespace's loopback.
    const data = join(this.work, 'central');
    const centralArgv = [process.execPath, CLI, 'central', 'serve', '--data', data, '--listen', `127.0.0.1:${CENTRAL_PORT}`];
    this.central = { proc: this.spawnLogged(ns, centralArgv, this.centralLog), argv: centralArgv };
    await until(() => existsSync(join(data, 'admin.token')) && readFileSync(this.centralLog, 'utf8').includes('listening'), 'the central to listen', 60_000, {
      diag: () => tail(this.centralLog),
    });
    this.env = {
      UNDERLAY_URL: `https://127.0.0.1:${CENTRAL_PORT}`,
      UNDERLAY_CA: join(data, 'ca.pem'),
      UNDERLAY_TOKEN: readFileSync(join(data, 'admin.token'), 'utf8').trim(),
    };

    phase('central listening');
    // The site, as a user sets it up.
    this.cli(['sites', 'create', SITE]);
    const subnets = opts.subnets ?? [DEFAULT_SUBNET, ...(opts.relay ? [RELAY_SUBNET] : [])];
    for (const s of subnets) {
      this.cli(['subnets', 'create', '--site', SITE, '--cidr', s.cidr, '--range', s.range, '--gateway', s.gateway, '--dns', AGENT_ADDRESS, '--lease-time', s.leaseTime ?? '10m']);
    }
    this.cli(['bootenvs', 'import', join(REPO, 'images')]);
    const joinToken = (this.cliJson(['token', 'create', '--role', 'agent-join', '--site', SITE]) as { token: string }).token;

    phase('site, subnets, boot environments created');
    if (opts.beforeAgent) await opts.beforeAgent(this);

    // The agent: join once, then run serving br0.
    const state = join(this.work, 'agent');
    this.cli(['agent', 'join', '--central', `https://127.0.0.1:${CENTRAL_PORT}`, '--token', joinToken, '--state', state], { noAuthEnv: true });
    const agentArgv = [process.execPath, CLI, 'agent', 'run', '--state', state, '--interface', 'br0', '--dhcp', opts.dhcp, '--http-port', '8080', '--tftp-port', '69', '--dhcp-port', '67', '--boot-dir', bootDir];
    const agentEnv = { UNDERLAY_LOG_LEVEL: opts.agentLogLevel ?? 'info', ...opts.agentEnv };
    this.agent = { proc: this.spawnLogged(ns, agentArgv, this.agentLog, agentEnv), argv: agentArgv, env: agentEnv };
    const want = opts.dhcp === 'off' ? 'HTTP boot listening' : 'DHCP serving';
    await until(() => this.agentLines().some((l) => l.msg === want), `the agent (${want})`, 60_000, { diag: () => tail(this.agentLog) });
    await until(
      () => this.agentLines().some((l) => l.msg === 'desired state updated'),
      'the agent to receive the site desired state',
      60_000,
      { diag: () => tail(this.agentLog) },
    );
    phase('agent serving with the site state');
  }

  /** kill -9 the central (its process group), then start it again on the same data directory and wait until it listens. */
  async restartCentral(): Promise<void> {
    await this.stopCentral();
    await this.startCentral();
  }

  /** The central goes away: kill -9 (its data directory stays). */
  async stopCentral(): Promise<void> {
    await killGroup(this.central!.proc);
  }

  /** Starts the central again on its data directory and waits until it listens. */
  async startCentral(): Promise<void> {
    const c = this.central!;
    const before = readFileSync(this.centralLog, 'utf8').split('listening').length;
    c.proc = this.spawnLogged(this.ns, c.argv, this.centralLog);
    await until(() => readFileSync(this.centralLog, 'utf8').split('listening').length > before, 'the central to listen again', 120_000, { diag: () => tail(this.centralLog) });
  }

  /** Cuts the site's link: kill -9 the agent (its state directory stays). */
  async stopAgent(): Promise<void> {
    await killGroup(this.agent!.proc);
  }

  /** Starts the agent again on its state directory and waits until it serves DHCP with its cached state. */
  async startAgent(): Promise<void> {
    const a = this.agent!;
    const before = this.agentLines().filter((l) => l.msg === 'DHCP serving').length;
    a.proc = this.spawnLogged(this.ns, a.argv, this.agentLog, a.env);
    await until(() => this.agentLines().filter((l) => l.msg === 'DHCP serving').length > before, 'the agent to serve again', 120_000, { diag: () => tail(this.agentLog) });
  }

  /** Router namespace: eth0 198.18.0.2 on br0, br1 198.18.1.1/24, forwarding, dhcrelay → the agent. */
  private addRelaySegment(): void {
    const router = this.ns.addClient('br0');
    this.router = router;
    router.exec(['ip', 'addr', 'add', '198.18.0.2/24', 'dev', 'eth0']);
    router.addBridge('br1', '198.18.1.1/24');
    router.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    this.ns.exec(['ip', 'route', 'add', '198.18.1.0/24', 'via', '198.18.0.2']);
    // -a: add option 82; -D: drop replies whose option 82 does not match what we sent.
    this.spawnLogged(router, ['dhcrelay', '-4', '-d', '-a', '-D', '-pf', join(this.work, 'dhcrelay.pid'), '-iu', 'eth0', '-id', 'br1', AGENT_ADDRESS], join(this.work, 'dhcrelay.log'));
  }

  /** Spawns a long-running process in a namespace with stdout+stderr appended to `logFile`. */
  spawnLogged(ns: NetNs, argv: string[], logFile: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
    const fd = openSync(logFile, 'a');
    try {
      const p = ns.spawn(argv, { stdio: ['ignore', fd, fd], env: { ...cleanEnv(), ...env }, cwd: this.work });
      this.procs.push(p);
      return p;
    } finally {
      closeSync(fd);
    }
  }

  /** Runs the underlay CLI inside the rack namespace (where the central listens); returns stdout. */
  cli(args: string[], o: { noAuthEnv?: boolean } = {}): string {
    const env: NodeJS.ProcessEnv = { ...cleanEnv(), ...(o.noAuthEnv ? {} : this.env) };
    try {
      return execFileSync('ip', ['netns', 'exec', this.ns.name, process.execPath, CLI, ...args], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], cwd: this.work });
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string };
      throw new Error(`underlay ${args.join(' ')} failed:\n${err.stderr ?? ''}${err.stdout ?? ''}`);
    }
  }

  cliJson(args: string[]): unknown {
    return JSON.parse(this.cli([...args, '-o', 'json']));
  }

  /** The CLI without blocking the event loop (long commands such as `machines wait`); never throws on exit codes. */
  cliAsync(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile('ip', ['netns', 'exec', this.ns.name, process.execPath, CLI, ...args], { encoding: 'utf8', env: { ...cleanEnv(), ...this.env }, cwd: this.work, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
    });
  }

  /** Leases the central recorded for this site (reported by the agent). */
  leases(mac?: string): Array<Record<string, unknown>> {
    return asList(this.cliJson(['leases', 'list', '--site', SITE, ...(mac ? ['--mac', mac] : [])]));
  }

  /** Machines the central knows. */
  machines(mac?: string): Array<Record<string, unknown>> {
    return asList(this.cliJson(['machines', 'list', ...(mac ? ['--mac', mac] : [])]));
  }

  agentLines(): LogLine[] {
    return jsonLines(this.agentLog);
  }

  /** Polls the agent's log for a line; `timeoutMs` is hang protection. */
  async waitForAgent(pred: (l: LogLine) => boolean, what: string, timeoutMs: number, vm?: Vm): Promise<LogLine> {
    return until(() => this.agentLines().find(pred), what, timeoutMs, {
      intervalMs: 1000,
      diag: () => `--- agent log (tail) ---\n${tail(this.agentLog)}${vm ? `\n--- ${vm.name} serial (tail) ---\n${tail(vm.serialLog)}\nqemu: ${vm.exitInfo()}` : ''}`,
    });
  }

  /** A tap on `bridge` (br0 in the rack namespace, or br1 in the router namespace for the relayed segment). */
  private tap(segment: 'br0' | 'br1'): { ns: NetNs; tap: string } {
    const ns = segment === 'br1' ? this.router : this.ns;
    if (!ns) throw new Error('no relayed segment: start the rack with relay: true');
    const tap = `tap${this.tapSeq++}`;
    ns.addTap(tap, segment);
    return { ns, tap };
  }

  /** Powers on a QEMU machine that boots from the network. */
  bootVm(o: { name: string; firmware: 'bios' | 'uefi'; mac: string; segment?: 'br0' | 'br1'; memMiB?: number; disk?: string; allowReboot?: boolean; guardSeconds?: number }): Vm {
    const { ns, tap } = this.tap(o.segment ?? 'br0');
    const serialLog = join(this.work, `${o.name}.serial.log`);
    writeFileSync(serialLog, '');
    const common = [
      'qemu-system-x86_64',
      '-name', o.name,
      '-machine', 'pc,accel=tcg',
      '-m', String(o.memMiB ?? 512),
      '-smp', '1',
      '-display', 'none', '-monitor', 'none', ...(o.allowReboot ? [] : ['-no-reboot']),
      '-serial', `file:${serialLog}`,
      '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      // A virtio disk (deploy tests); the network stays first in the boot order, as on a provisioned rack.
      ...(o.disk ? ['-drive', `file=${o.disk},format=raw,if=none,id=d0,cache=unsafe,discard=unmap`, '-device', `virtio-blk-pci,drive=d0${o.firmware === 'uefi' ? ',bootindex=2' : ''}`] : []),
    ];
    let argv: string[];
    if (o.firmware === 'bios') {
      // SeaBIOS + QEMU's iPXE option ROM for e1000 (the default romfile of the device).
      argv = [...common, '-device', `e1000,netdev=n0,mac=${o.mac}`, '-boot', 'n'];
    } else {
      const vars = join(this.work, `${o.name}.OVMF_VARS.fd`);
      copyFileSync(OVMF_VARS, vars);
      // OVMF's own virtio-net driver and PXE (romfile= empty: no iPXE ROM), so the firmware must chain-load
      // iPXE over TFTP.
      argv = [
        ...common,
        '-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`,
        '-drive', `if=pflash,format=raw,file=${vars}`,
        '-device', `virtio-net-pci,netdev=n0,mac=${o.mac},romfile=,bootindex=1`,
        // The lab's provisioning network is IPv4 only, and so is this firmware's network stack, as operators
        // set it in firmware setup: with IPv6 on, a deployed machine (netboot off) also waits out PXE and
        // HTTP boot over IPv6 before its disk (318 s → 170 s to the kernel, measured: docs/benchmarks.md).
        '-fw_cfg', 'name=opt/org.tianocore/IPv6Support,string=no',
      ];
    }
    const qemuLog = join(this.work, `${o.name}.qemu.log`);
    // `timeout` is a guard for a shared host only (a VM orphaned by a killed test run ends within 30 min,
    // or `guardSeconds` for a VM that lives through a whole deploy); the tests themselves never rely on it.
    const proc = this.spawnLogged(ns, ['timeout', '--signal=KILL', String(o.guardSeconds ?? 1800), ...argv], qemuLog);
    const vm = new Vm(o.name, o.mac, serialLog, qemuLog, proc);
    this.vms.push(vm);
    return vm;
  }

  /** Kills every process this rack started (by PID), deletes its namespaces and its temp dir. */
  destroy(opts: { keepWork?: boolean } = {}): void {
    process.off('exit', this.onExit);
    for (const p of this.procs) {
      if (p.pid && p.exitCode === null && p.signalCode === null) {
        try {
          process.kill(-p.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    this.procs = [];
    this.ns.destroy(); // also destroys the router namespace (a child) and kills what is left inside
    if (!opts.keepWork && process.env.UNDERLAY_E2E_KEEP !== '1') rmSync(this.work, { recursive: true, force: true });
  }
}

/** SIGKILL to a spawned process's group; resolves once the process is gone. */
async function killGroup(p: ChildProcess): Promise<void> {
  if (!p.pid || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  try {
    process.kill(-p.pid, 'SIGKILL');
  } catch {
    return;
  }
  await gone;
}

/** The caller's environment without UNDERLAY_* settings (ports, state dirs, log level...) that would change what runs. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('UNDERLAY_')));
}

function asList(v: unknown): Array<Record<string, unknown>> {
  if (Array.isArray(v)) return v as Array<Record<string, unknown>>;
  const o = v as { items?: unknown[]; data?: unknown[] };
  return (o.items ?? o.data ?? []) as Array<Record<string, unknown>>;
}

export class Vm {
  private exit?: { code: number | null; signal: NodeJS.Signals | null };

  constructor(
    readonly name: string,
    readonly mac: string,
    readonly serialLog: string,
    readonly qemuLog: string,
    readonly proc: ChildProcess,
  ) {
    proc.on('exit', (code, signal) => (this.exit = { code, signal }));
  }

  serial(): string {
    return existsSync(this.serialLog) ? readFileSync(this.serialLog, 'latin1') : '';
  }

  exitInfo(): string {
    return this.exit ? `exited (code ${this.exit.code}, signal ${this.exit.signal}); ${tail(this.qemuLog, 1000)}` : 'running';
  }

  /** Polls the serial log for a pattern; returns the match. */
  async waitForSerial(re: RegExp, what: string, timeoutMs: number): Promise<RegExpExecArray> {
    return until(() => re.exec(this.serial()) ?? (this.exit ? this.failExited(what) : undefined), what, timeoutMs, {
      intervalMs: 1000,
      diag: () => `--- ${this.name} serial (tail) ---\n${tail(this.serialLog)}\nqemu: ${this.exitInfo()}`,
    });
  }

  private failExited(what: string): never {
    throw new Error(`${this.name} stopped before ${what}: ${this.exitInfo()}\n--- serial (tail) ---\n${tail(this.serialLog)}`);
  }

  /** Waits for QEMU to exit on its own (the guest powered off); `timeoutMs` is hang protection. */
  async waitForExit(what: string, timeoutMs: number): Promise<void> {
    await until(() => this.exit !== undefined, what, timeoutMs, { intervalMs: 1000, diag: () => `--- ${this.name} serial (tail) ---\n${tail(this.serialLog)}` });
  }

  /** Powers the VM off (SIGKILL to its process group) and waits for it to be gone. */
  async stop(): Promise<void> {
    if (this.exit || !this.proc.pid) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    try {
      process.kill(-this.proc.pid, 'SIGKILL');
    } catch {
      return;
    }
    await gone;
  }
}
