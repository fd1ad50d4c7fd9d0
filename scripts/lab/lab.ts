import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient, resolveClientConfig, type ClientConfig } from '../../shared/client/api-client.js';
import { BIOS_NIC_ROM, IPXE_DIR, OVMF_CODE, OVMF_VARS, labPrereqs, missingReport, type Firmware } from './prereqs.js';

/**
 * `underlay lab`: a virtual rack on this host. One network namespace with a bridge (198.18.0.1/24), the
 * site agent inside it serving DHCP/TFTP/HTTP, N QEMU machines on taps that PXE boot the discovery image,
 * and a central on the host's loopback (the running one, or the lab's own). The namespace has no IP route
 * to the host: the agent's one TCP connection to the central crosses the boundary through a unix socket
 * (a forwarder on each side). Everything the lab starts is recorded in <dir>/state.json, which `down` uses
 * to stop exactly those processes and remove exactly those files.
 */

export const LAB_ADDRESS = '198.18.0.1';
export const LAB_CIDR = '198.18.0.0/24';
const BRIDGE = 'br0';
const INNER_CENTRAL_PORT = 8443;
const STATE_FILE = 'state.json';

export interface LabMachine {
  name: string;
  firmware: 'bios' | 'uefi';
  mac: string;
  uuid: string;
  serial: string;
  memoryMb: number;
  cpus: number;
  diskGb: number;
  tap: string;
  disk: string;
  serialLog: string;
  monitor: string;
  vars?: string;
  qemuLog: string;
  argv: string[];
  pid?: number;
}

export interface LabProcess {
  role: string;
  pid: number;
  argv: string[];
  log: string;
  /** A string that must appear in /proc/PID/cmdline for the PID to still be ours. */
  marker: string;
}

export interface LabState {
  version: 1;
  dir: string;
  netns: string;
  bridge: string;
  address: string;
  site: string;
  createdAt: string;
  central: { url: string; ca?: string; tokenFile?: string; own: boolean; innerUrl: string; socket: string };
  agent: { state: string; name: string; id?: string; argv: string[]; log: string };
  bootDir: string;
  image?: string;
  processes: LabProcess[];
  machines: LabMachine[];
  /** Files and directories (relative to dir) the lab created: removed by down. */
  files: string[];
}

export interface UpOptions {
  dir: string;
  machines: number;
  firmware: Firmware;
  memoryMb: number;
  cpus: number;
  diskGb: number;
  site: string;
  ownCentral: boolean;
  client: { url?: string; token?: string; ca?: string };
  log?: (line: string) => void;
}

// ---- locations ---------------------------------------------------------------------------------------

/** The repository (or installed package) root: the nearest parent with underlay's package.json. */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let d = from;
  for (;;) {
    const p = join(d, 'package.json');
    if (existsSync(p)) {
      try {
        if ((JSON.parse(readFileSync(p, 'utf8')) as { name?: string }).name === 'underlay') return d;
      } catch {
        /* keep looking */
      }
    }
    const up = dirname(d);
    if (up === d) throw new Error('cannot find the underlay package root (package.json)');
    d = up;
  }
}

function locations() {
  const root = packageRoot();
  const cli = join(root, 'dist/shared/cli/underlay.js');
  const forward = join(root, 'dist/scripts/lab/forward.js');
  for (const f of [cli, forward]) if (!existsSync(f)) throw new Error(`${f} is missing: build first (npm run build)`);
  return { root, cli, forward, buildScript: join(root, 'scripts/images/build-discovery.sh'), images: join(root, 'images') };
}

export function defaultLabDir(): string {
  return resolve(process.env.UNDERLAY_LAB_DIR ?? './.underlay-lab');
}

export function netnsName(dir: string): string {
  return `ullab-${createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 6)}`;
}

export function machineIdentity(i: number): { name: string; mac: string; uuid: string; serial: string } {
  const n = i + 1;
  const hex = n.toString(16).padStart(2, '0');
  return {
    name: `m${n}`,
    mac: `52:54:00:1a:b0:${hex}`,
    uuid: `4c414230-0000-4000-8000-0000000000${hex}`,
    serial: `UL-LAB-${String(n).padStart(4, '0')}`,
  };
}

// ---- state -------------------------------------------------------------------------------------------

export function statePath(dir: string): string {
  return join(dir, STATE_FILE);
}

export function readState(dir: string): LabState | null {
  const p = statePath(dir);
  if (!existsSync(p)) return null;
  return JSON.parse(readFileSync(p, 'utf8')) as LabState;
}

function saveState(s: LabState): void {
  writeFileSync(statePath(s.dir), JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
}

// ---- processes ---------------------------------------------------------------------------------------

/** True when PID runs and its command line still contains `marker` (a recycled PID is not ours). */
export function processAlive(pid: number | undefined, marker: string): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    if (!cmd.includes(marker)) return false;
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(st); // a zombie is gone for our purposes
  } catch {
    return false;
  }
}

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('UNDERLAY_')) env[k] = v;
  return env;
}

/** Starts a detached background process with stdout+stderr to `log`; returns its PID. */
function startBackground(argv: string[], log: string, env: NodeJS.ProcessEnv = childEnv()): number {
  const fd = openSync(log, 'a');
  try {
    const p = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd], env });
    if (!p.pid) throw new Error(`could not start ${argv[0]}`);
    p.unref();
    return p.pid;
  } finally {
    closeSync(fd);
  }
}

function run(argv: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input: opts.input, env: opts.env ?? process.env });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${argv.slice(0, 6).join(' ')}${argv.length > 6 ? ' …' : ''} failed: ${(err.stderr || err.stdout || err.message).trim().split('\n').slice(-5).join('\n')}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
  failed?: () => string | undefined,
  detail?: () => string,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v;
    const f = failed?.();
    if (f) throw new Error(`${what}: ${f}`);
    if (Date.now() > until) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${detail ? `\n${detail()}` : ''}`);
    await sleep(300);
  }
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function stopPid(pid: number, marker: string, graceMs = 5000): Promise<void> {
  if (!processAlive(pid, marker)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    if (!processAlive(pid, marker)) return;
    await sleep(100);
  }
  if (processAlive(pid, marker)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    const hard = Date.now() + 3000;
    while (Date.now() < hard && processAlive(pid, marker)) await sleep(50);
  }
}

// ---- network namespace -------------------------------------------------------------------------------

export function netnsExists(name: string): boolean {
  return run(['ip', 'netns', 'list']).split('\n').some((l) => l.split(' ')[0] === name);
}

function nsExec(ns: string, argv: string[]): string {
  return run(['ip', 'netns', 'exec', ns, ...argv]);
}

function createNetwork(ns: string, taps: string[]): void {
  run(['ip', 'netns', 'add', ns]);
  nsExec(ns, ['ip', 'link', 'set', 'lo', 'up']);
  nsExec(ns, ['ip', 'link', 'add', BRIDGE, 'type', 'bridge']);
  // No STP/forwarding delay: the firmware's first DHCPDISCOVER must not fall into a learning period.
  nsExec(ns, ['ip', 'link', 'set', BRIDGE, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
  nsExec(ns, ['ip', 'addr', 'add', `${LAB_ADDRESS}/24`, 'dev', BRIDGE]);
  // A bridge has no carrier until a port has one, and the agent needs the interface up and running
  // before the VMs' taps are attached (Node lists only running interfaces): a veth port gives it one.
  nsExec(ns, ['ip', 'link', 'add', 'carrier0', 'type', 'veth', 'peer', 'name', 'carrier1']);
  nsExec(ns, ['ip', 'link', 'set', 'carrier0', 'master', BRIDGE]);
  nsExec(ns, ['ip', 'link', 'set', 'carrier0', 'up']);
  nsExec(ns, ['ip', 'link', 'set', 'carrier1', 'up']);
  nsExec(ns, ['ip', 'link', 'set', BRIDGE, 'up']);
  for (const t of taps) {
    nsExec(ns, ['ip', 'tuntap', 'add', 'dev', t, 'mode', 'tap']);
    nsExec(ns, ['ip', 'link', 'set', t, 'master', BRIDGE]);
    nsExec(ns, ['ip', 'link', 'set', t, 'up']);
  }
}

// ---- central -----------------------------------------------------------------------------------------

function clientFor(s: Pick<LabState, 'central'>, flags: UpOptions['client'] = {}): ApiClient {
  return new ApiClient(configFor(s, flags));
}

function configFor(s: Pick<LabState, 'central'>, flags: UpOptions['client'] = {}): ClientConfig {
  if (s.central.own) {
    return resolveClientConfig({ url: s.central.url, token: readFileSync(s.central.tokenFile!, 'utf8').trim(), ca: s.central.ca }, {});
  }
  return resolveClientConfig({ url: flags.url ?? s.central.url, token: flags.token, ca: flags.ca ?? s.central.ca });
}

/** The environment for running `underlay …` against the lab's central. */
export function cliEnv(s: LabState, flags: UpOptions['client'] = {}): Record<string, string> {
  const c = configFor(s, flags);
  const ca = s.central.own ? s.central.ca : (flags.ca ?? s.central.ca);
  return { UNDERLAY_URL: c.url, UNDERLAY_TOKEN: c.token ?? '', ...(ca ? { UNDERLAY_CA: ca } : {}) };
}

async function reachable(cfg: ClientConfig): Promise<boolean> {
  try {
    const client = new ApiClient(cfg);
    await Promise.race([client.call('GET', '/api/v1/sites?limit=1'), sleep(4000).then(() => Promise.reject(new Error('timeout')))]);
    return true;
  } catch {
    return false;
  }
}

// ---- the discovery image -----------------------------------------------------------------------------

function buildImage(script: string, log: (l: string) => void): string {
  log('discovery image: scripts/images/build-discovery.sh (cached after the first build; the first one takes about a minute)');
  const out = run(['bash', script]);
  const dir = out.trim().split('\n').pop()!.trim();
  for (const f of ['vmlinuz', 'initrd.img']) if (!existsSync(join(dir, f))) throw new Error(`the image build printed ${dir}, which has no ${f}`);
  return dir;
}

// ---- QEMU --------------------------------------------------------------------------------------------

export function qemuArgv(m: LabMachine): string[] {
  const a = [
    'qemu-system-x86_64',
    '-name', `underlay-lab-${m.name}`,
    '-machine', 'pc,accel=tcg',
    '-m', String(m.memoryMb),
    '-smp', String(m.cpus),
    '-uuid', m.uuid,
    '-smbios', `type=1,manufacturer=Underlay,product=Lab VM,serial=${m.serial}`,
    '-display', 'none',
    '-vga', 'none',
    '-serial', `file:${m.serialLog}`,
    '-monitor', `unix:${m.monitor},server,nowait`,
    '-netdev', `tap,id=n0,ifname=${m.tap},script=no,downscript=no`,
    '-drive', `file=${m.disk},format=raw,if=none,id=d0`,
    '-device', `virtio-blk-pci,drive=d0,serial=${m.serial}-D0,bootindex=2`,
  ];
  if (m.firmware === 'bios') {
    // SeaBIOS + the e1000's iPXE option ROM (both print to the VGA console only: the serial log starts at Linux).
    a.push('-device', `e1000,netdev=n0,mac=${m.mac},romfile=${BIOS_NIC_ROM},bootindex=1`);
  } else {
    a.push('-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`);
    a.push('-drive', `if=pflash,format=raw,file=${m.vars}`);
    // OVMF's own virtio-net driver (romfile empty): the firmware PXE-boots, then chain-loads iPXE.
    a.push('-device', `virtio-net-pci,netdev=n0,mac=${m.mac},romfile=,bootindex=1`);
  }
  return a;
}

/** Sends one human monitor command to a machine's QEMU and returns its answer. */
export async function monitorCommand(socket: string, command: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const c = connect(socket);
    let buf = '';
    let sent = false;
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`QEMU monitor ${socket}: no answer to "${command}"`));
    }, timeoutMs);
    c.on('data', (d) => {
      buf += d.toString('utf8');
      if (!sent && buf.includes('(qemu)')) {
        sent = true;
        buf = '';
        c.write(command + '\n');
      } else if (sent && buf.includes('(qemu)')) {
        clearTimeout(timer);
        c.end();
        // The monitor echoes the command (redrawn per keystroke, no newline) before its answer: the
        // answer is what follows the first newline, up to the next prompt.
        const text = buf.replace(/\r/g, '');
        const nl = text.indexOf('\n');
        const answer = nl === -1 ? '' : text.slice(nl + 1, text.lastIndexOf('(qemu)'));
        resolvePromise(answer.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').trim());
      }
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

// ---- up ----------------------------------------------------------------------------------------------

export async function labUp(o: UpOptions): Promise<LabState> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  if (!Number.isInteger(o.machines) || o.machines < 0 || o.machines > 64) throw new Error('--machines must be 0…64');
  if (!Number.isInteger(o.memoryMb) || o.memoryMb < 256) throw new Error('--memory must be at least 256 (MB)');
  if (!Number.isInteger(o.cpus) || o.cpus < 1 || o.cpus > 16) throw new Error('--cpus must be 1…16');
  if (!Number.isInteger(o.diskGb) || o.diskGb < 1) throw new Error('--disk must be at least 1 (GB)');
  const missing = missingReport(labPrereqs(o.firmware));
  if (missing) throw new Error(missing);
  const loc = locations();
  const dir = resolve(o.dir);
  const ns = netnsName(dir);
  const existing = readState(dir);
  if (existing) {
    const alive = existing.processes.some((p) => processAlive(p.pid, p.marker)) || existing.machines.some((m) => processAlive(m.pid, m.monitor));
    if (alive || netnsExists(existing.netns)) throw new Error(`a lab is already up in ${dir} (namespace ${existing.netns}): run "underlay lab down" first`);
    await labDown(dir, { log: () => undefined });
  } else if (netnsExists(ns)) {
    throw new Error(`network namespace ${ns} exists but ${dir} has no lab state: remove it with "ip netns del ${ns}" if it is a leftover`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const t0 = Date.now();
  const image = buildImage(loc.buildScript, log);
  const bootDir = join(dir, 'boot');
  const s: LabState = {
    version: 1,
    dir,
    netns: ns,
    bridge: BRIDGE,
    address: LAB_ADDRESS,
    site: o.site,
    createdAt: new Date().toISOString(),
    central: { url: '', own: false, innerUrl: `https://127.0.0.1:${INNER_CENTRAL_PORT}`, socket: join(dir, 'central.sock') },
    agent: { state: join(dir, 'agent'), name: `lab-${ns.slice(6)}`, argv: [], log: join(dir, 'agent.log') },
    bootDir,
    image,
    processes: [],
    machines: [],
    files: [STATE_FILE],
  };
  const track = (...rel: string[]) => {
    for (const r of rel) if (!s.files.includes(r)) s.files.push(r);
    saveState(s);
  };
  saveState(s);
  try {
    // Boot files the agent serves at /files/: a copy of the discovery image (the agent refuses symlinks
    // that leave its boot directory, as TFTP does).
    mkdirSync(join(bootDir, 'discovery'), { recursive: true });
    track('boot');
    for (const f of ['vmlinuz', 'initrd.img']) copyFileSync(join(image, f), join(bootDir, 'discovery', f));

    // Network first (cheap), so a failure here leaves nothing running.
    const machines: LabMachine[] = [];
    for (let i = 0; i < o.machines; i++) {
      const id = machineIdentity(i);
      const firmware: 'bios' | 'uefi' = o.firmware === 'mixed' ? (i % 2 === 0 ? 'bios' : 'uefi') : o.firmware;
      machines.push({
        ...id,
        firmware,
        memoryMb: o.memoryMb,
        cpus: o.cpus,
        diskGb: o.diskGb,
        tap: `tap-${id.name}`,
        disk: join(dir, `${id.name}.disk`),
        serialLog: join(dir, `${id.name}.serial.log`),
        monitor: join(dir, `${id.name}.monitor`),
        qemuLog: join(dir, `${id.name}.qemu.log`),
        ...(firmware === 'uefi' ? { vars: join(dir, `${id.name}.OVMF_VARS.fd`) } : {}),
        argv: [],
      });
    }
    log(`network: namespace ${ns}, bridge ${BRIDGE} ${LAB_ADDRESS}/24, ${machines.length} tap(s)`);
    createNetwork(ns, machines.map((m) => m.tap));

    // The central: the running one if we can reach it (flags, UNDERLAY_*, ./data), else our own.
    let cfg: ClientConfig | null = null;
    if (!o.ownCentral) {
      try {
        cfg = resolveClientConfig(o.client);
      } catch {
        cfg = null;
      }
      if (cfg && !cfg.token) cfg = null;
      if (cfg && !(await reachable(cfg))) {
        log(`central: ${cfg.url} is not reachable with the configured credentials; starting the lab's own`);
        cfg = null;
      }
    }
    if (cfg) {
      const u = new URL(cfg.url);
      if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(u.hostname)) {
        throw new Error(`the central at ${cfg.url} is not on this host's loopback; the lab forwards only to a loopback central (use --own-central)`);
      }
      const dataDir = process.env.UNDERLAY_DATA ?? './data';
      const caPath = o.client.ca ?? process.env.UNDERLAY_CA ?? (existsSync(join(dataDir, 'ca.pem')) ? join(dataDir, 'ca.pem') : undefined);
      s.central = { ...s.central, url: cfg.url, own: false, ...(caPath ? { ca: resolve(caPath) } : {}) };
      saveState(s);
      log(`central: using the running one at ${cfg.url}`);
    } else {
      const data = join(dir, 'central');
      const clog = join(dir, 'central.log');
      track('central', 'central.log');
      const argv = [process.execPath, loc.cli, 'central', 'serve', '--data', data, '--listen', '127.0.0.1:0'];
      const pid = startBackground(argv, clog);
      s.processes.push({ role: 'central', pid, argv, log: clog, marker: data });
      saveState(s);
      const url = await waitFor(
        'the central to listen',
        60_000,
        () => {
          const m = /"url":"(https:\/\/127\.0\.0\.1:\d+)"[^\n]*"msg":"central listening"/.exec(tail(clog, 50));
          return m?.[1];
        },
        () => (processAlive(pid, data) ? undefined : `it exited:\n${tail(clog)}`),
      );
      s.central = { ...s.central, url, own: true, ca: join(data, 'ca.pem'), tokenFile: join(data, 'admin.token') };
      saveState(s);
      log(`central: started the lab's own at ${url} (data in ${data})`);
    }
    const client = clientFor(s, o.client);
    const port = new URL(s.central.url).port || '443';

    // The one TCP connection from the namespace to the central, through a unix socket.
    track('central.sock', 'forward-host.log', 'forward-netns.log');
    const fwdHost = [process.execPath, loc.forward, 'unix-to-tcp', s.central.socket, '127.0.0.1', port];
    const fwdHostPid = startBackground(fwdHost, join(dir, 'forward-host.log'));
    s.processes.push({ role: 'forward-host', pid: fwdHostPid, argv: fwdHost, log: join(dir, 'forward-host.log'), marker: s.central.socket });
    saveState(s);
    await waitFor('the host-side forwarder', 15_000, () => existsSync(s.central.socket) || undefined, () => (processAlive(fwdHostPid, s.central.socket) ? undefined : tail(join(dir, 'forward-host.log'))));
    const fwdNs = ['ip', 'netns', 'exec', ns, process.execPath, loc.forward, 'tcp-to-unix', '127.0.0.1', String(INNER_CENTRAL_PORT), s.central.socket];
    const fwdNsPid = startBackground(fwdNs, join(dir, 'forward-netns.log'));
    s.processes.push({ role: 'forward-netns', pid: fwdNsPid, argv: fwdNs, log: join(dir, 'forward-netns.log'), marker: s.central.socket });
    saveState(s);
    await waitFor('the namespace-side forwarder', 15_000, () => tail(join(dir, 'forward-netns.log')).includes('forwarding') || undefined, () => (processAlive(fwdNsPid, s.central.socket) ? undefined : tail(join(dir, 'forward-netns.log'))));

    // Site, subnet, boot environment library.
    const sites = await client.call<{ items: { name: string }[] }>('GET', `/api/v1/sites?limit=1000`);
    if (!sites.items.some((x) => x.name === o.site)) runCli(loc.cli, s, o.client, ['sites', 'create', o.site]);
    const subnets = await client.call<{ items: { cidr: string; site: string }[] }>('GET', `/api/v1/subnets?site=${encodeURIComponent(o.site)}&limit=1000`);
    if (!subnets.items.some((x) => x.cidr === LAB_CIDR && x.site === o.site)) {
      runCli(loc.cli, s, o.client, ['subnets', 'create', '--site', o.site, '--cidr', LAB_CIDR, '--range', '198.18.0.100-198.18.0.200', '--dns', LAB_ADDRESS, '--lease-time', '10m']);
    }
    log('boot environments: importing the library (images/)');
    runCli(loc.cli, s, o.client, ['bootenvs', 'import', loc.images]);

    // Join the agent (inside the namespace, through the forwarder), then run it.
    const join_ = JSON.parse(runCli(loc.cli, s, o.client, ['token', 'create', '--role', 'agent-join', '--site', o.site, '--ttl', '10m', '--name', `underlay lab ${s.agent.name}`, '-o', 'json'])) as { token: string };
    track('agent', 'agent.log');
    nsExec(ns, [process.execPath, loc.cli, 'agent', 'join', '--central', s.central.innerUrl, '--token', join_.token, '--state', s.agent.state, '--name', s.agent.name, '--force']);
    s.agent.id = (JSON.parse(readFileSync(join(s.agent.state, 'agent.json'), 'utf8')) as { agentId: string }).agentId;
    s.agent.argv = [
      'ip', 'netns', 'exec', ns, process.execPath, loc.cli, 'agent', 'run',
      '--state', s.agent.state, '--interface', BRIDGE, '--address', LAB_ADDRESS, '--dhcp', 'full',
      '--boot-dir', bootDir, '--ipxe-dir', IPXE_DIR,
    ];
    saveState(s);
    await startAgentProcess(s);
    log(`agent: ${s.agent.name} (${s.agent.id}) serving DHCP/TFTP/HTTP on ${BRIDGE} ${LAB_ADDRESS} (log ${s.agent.log})`);

    // Machines.
    for (const m of machines) {
      track(`${m.name}.disk`, `${m.name}.serial.log`, `${m.name}.monitor`, `${m.name}.qemu.log`, ...(m.vars ? [`${m.name}.OVMF_VARS.fd`] : []));
      closeSync(openSync(m.disk, 'w'));
      execFileSync('truncate', ['-s', `${m.diskGb}G`, m.disk]);
      if (m.vars) copyFileSync(OVMF_VARS, m.vars);
      m.argv = ['ip', 'netns', 'exec', ns, ...qemuArgv(m)];
      m.pid = startBackground(m.argv, m.qemuLog);
      s.machines.push(m);
      saveState(s);
      log(`machine ${m.name}: ${m.firmware.toUpperCase()}, MAC ${m.mac}, ${m.cpus} CPU, ${m.memoryMb} MiB, ${m.diskGb} GB disk, uuid ${m.uuid}, serial ${m.serial}`);
    }
    await sleep(1000);
    for (const m of s.machines) if (!processAlive(m.pid, m.monitor)) throw new Error(`QEMU for ${m.name} exited at once:\n${tail(m.qemuLog)}`);
    log(`lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return s;
  } catch (e) {
    log(`lab up failed: ${(e as Error).message.split('\n')[0]}; cleaning up`);
    await labDown(dir, { log: () => undefined, keepDir: true }).catch(() => undefined);
    throw e;
  }
}

function runCli(cli: string, s: LabState, flags: UpOptions['client'], args: string[]): string {
  return run([process.execPath, cli, ...args], { env: { ...childEnv(), ...cliEnv(s, flags) } });
}

/** Starts (or restarts) the lab's agent from its recorded command line and waits until it serves boots with state. */
export async function startAgentProcess(s: LabState): Promise<void> {
  const old = s.processes.find((p) => p.role === 'agent');
  if (old && processAlive(old.pid, s.agent.state)) throw new Error(`the agent is already running (pid ${old.pid})`);
  s.processes = s.processes.filter((p) => p.role !== 'agent');
  const pid = startBackground(s.agent.argv, s.agent.log);
  s.processes.push({ role: 'agent', pid, argv: s.agent.argv, log: s.agent.log, marker: s.agent.state });
  saveState(s);
  await waitFor(
    `the agent to serve boots with the site state (log ${s.agent.log})`,
    60_000,
    () => {
      try {
        const out = execFileSync('ip', ['netns', 'exec', s.netns, 'busybox', 'wget', '-q', '-O', '-', `http://${LAB_ADDRESS}:8080/healthz`], { encoding: 'utf8', timeout: 3000, stdio: ['ignore', 'pipe', 'ignore'] });
        const h = JSON.parse(out) as { stateVersion: string | null };
        return h.stateVersion ? h : undefined;
      } catch {
        return undefined;
      }
    },
    () => (processAlive(pid, s.agent.state) ? undefined : `the agent exited:\n${tail(s.agent.log)}`),
    () => tail(s.agent.log, 8),
  );
  if (!/DHCP serving/.test(readFileSync(s.agent.log, 'utf8'))) throw new Error(`the agent is not serving DHCP:\n${tail(s.agent.log)}`);
}

export async function stopAgentProcess(s: LabState): Promise<void> {
  const p = s.processes.find((x) => x.role === 'agent');
  if (p) await stopPid(p.pid, p.marker);
}

// ---- status ------------------------------------------------------------------------------------------

export interface LabStatus {
  dir: string;
  netns: string;
  netnsUp: boolean;
  central: { url: string; own: boolean; reachable: boolean };
  processes: { role: string; pid: number; alive: boolean }[];
  agent: { name: string; id?: string; running: boolean; connected?: boolean };
  machines: { name: string; firmware: string; mac: string; pid?: number; running: boolean; phase: string; discovered?: { name: string; id: string; state: string; updatedAt: string } }[];
  discovered: { id: string; name: string; macs: string[]; state: string; cpus?: number; memoryMiB?: number; disks?: number }[];
}

/** What the serial console says a machine is doing. */
export function machinePhase(serialLog: string): string {
  let text = '';
  try {
    text = readFileSync(serialLog, 'utf8');
  } catch {
    return 'not started';
  }
  const last = (re: RegExp) => {
    let i = -1;
    for (const m of text.matchAll(re)) i = m.index ?? i;
    return i;
  };
  const marks: [string, number][] = [
    ['firmware', 0],
    ['iPXE', last(/iPXE/g)],
    ['linux booting', last(/Linux version/g)],
    ['discovered; runner waiting for tasks', last(/underlay: discovered/g)],
    ['running a task', last(/\(run-script\) running/g)],
    ['discovered; runner waiting for tasks', last(/\(run-script\) (succeeded|failed)/g)],
    ['rebooting', last(/reboot: Restarting system|\(reboot\)/g)],
  ];
  if (text.length === 0) return 'firmware (no console output yet)';
  return marks.filter(([, i]) => i >= 0).sort((a, b) => a[1] - b[1]).pop()![0];
}

export async function labStatus(dir: string, flags: UpOptions['client'] = {}): Promise<LabStatus> {
  const s = readState(resolve(dir));
  if (!s) throw new Error(`no lab in ${resolve(dir)} (start one with "underlay lab up --machines 2")`);
  const agentProc = s.processes.find((p) => p.role === 'agent');
  const st: LabStatus = {
    dir: s.dir,
    netns: s.netns,
    netnsUp: netnsExists(s.netns),
    central: { url: s.central.url, own: s.central.own, reachable: false },
    processes: s.processes.map((p) => ({ role: p.role, pid: p.pid, alive: processAlive(p.pid, p.marker) })),
    agent: { name: s.agent.name, ...(s.agent.id ? { id: s.agent.id } : {}), running: !!agentProc && processAlive(agentProc.pid, agentProc.marker) },
    machines: s.machines.map((m) => ({ name: m.name, firmware: m.firmware, mac: m.mac, ...(m.pid ? { pid: m.pid } : {}), running: processAlive(m.pid, m.monitor), phase: machinePhase(m.serialLog) })),
    discovered: [],
  };
  try {
    const client = clientFor(s, flags);
    const page = await client.call<{ items: { id: string; name: string; macs: string[]; state: string; updatedAt: string; facts?: { cpu?: { threads?: number }; memory?: { totalBytes?: number }; disks?: unknown[] } }[] }>(
      'GET',
      `/api/v1/machines?site=${encodeURIComponent(s.site)}&limit=1000`,
    );
    st.central.reachable = true;
    st.discovered = page.items.map((m) => ({
      id: m.id,
      name: m.name,
      macs: m.macs,
      state: m.state,
      ...(m.facts?.cpu?.threads ? { cpus: m.facts.cpu.threads } : {}),
      ...(m.facts?.memory?.totalBytes ? { memoryMiB: Math.round(m.facts.memory.totalBytes / 1048576) } : {}),
      ...(m.facts?.disks ? { disks: m.facts.disks.length } : {}),
    }));
    for (const vm of st.machines) {
      const rec = page.items.find((m) => m.macs.includes(vm.mac));
      if (rec) vm.discovered = { name: rec.name, id: rec.id, state: rec.state, updatedAt: rec.updatedAt };
    }
    if (s.agent.id) {
      const a = await client.call<{ connected?: boolean }>('GET', `/api/v1/agents/${encodeURIComponent(s.agent.id)}`).catch(() => null);
      if (a && typeof a.connected === 'boolean') st.agent.connected = a.connected;
    }
  } catch {
    /* central unreachable: reported as such */
  }
  return st;
}

// ---- down --------------------------------------------------------------------------------------------

export async function labDown(dir: string, o: { log?: (l: string) => void; keepDir?: boolean; client?: UpOptions['client'] } = {}): Promise<{ killed: number[]; removed: string[] }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const abs = resolve(dir);
  const s = readState(abs);
  if (!s) {
    log(`no lab in ${abs}: nothing to do`);
    return { killed: [], removed: [] };
  }
  const killed: number[] = [];
  // Machines first, then the agent, the forwarders and the central (reverse order of start).
  await Promise.all(
    s.machines.map(async (m) => {
      if (m.pid && processAlive(m.pid, m.monitor)) {
        await stopPid(m.pid, m.monitor);
        killed.push(m.pid);
      }
    }),
  );
  // The agent can be revoked while the central still runs (best effort; a shared central keeps no dead agent).
  if (s.agent.id && !s.central.own && s.central.url) {
    await clientFor(s, o.client ?? {})
      .call('POST', `/api/v1/agents/${encodeURIComponent(s.agent.id)}/revoke`)
      .catch(() => undefined);
  }
  for (const p of [...s.processes].reverse()) {
    if (processAlive(p.pid, p.marker)) {
      await stopPid(p.pid, p.marker);
      killed.push(p.pid);
    }
  }
  if (netnsExists(s.netns)) {
    // Anything still inside our namespace was started by the lab (the namespace is the lab's own).
    for (const pid of run(['ip', 'netns', 'pids', s.netns]).split(/\s+/).filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        /* gone */
      }
    }
    run(['ip', 'netns', 'del', s.netns]);
  }
  const removed: string[] = [];
  for (const rel of [...s.files].reverse()) {
    if (rel === STATE_FILE) continue;
    const p = join(abs, rel);
    if (existsSync(p) || isSymlink(p)) {
      rmSync(p, { recursive: true, force: true });
      removed.push(p);
    }
  }
  rmSync(statePath(abs), { force: true });
  removed.push(statePath(abs));
  if (!o.keepDir) {
    try {
      if (readdirSync(abs).length === 0) rmSync(abs, { recursive: true });
    } catch {
      /* keep a directory that holds someone else's files */
    }
  }
  log(`lab down: stopped ${killed.length} process(es), deleted namespace ${s.netns}, removed ${removed.length} file(s)/dir(s) from ${abs} (the image cache is kept)`);
  return { killed, removed };
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
