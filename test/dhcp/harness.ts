/**
 * Shared pieces for the DHCP real-client tests: compiling the server/client runners, a rack namespace with
 * the server running inside it, and wrappers around busybox udhcpc and ISC dhclient.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { NetNs } from '../support/netns.js';

const ROOT = resolve(import.meta.dirname, '../..');

export interface Built {
  dir: string;
  runner: string;
  client: string;
}

/** Compile the runners (and the DHCP module they import) into a temp dir that resolves our node_modules. */
export function buildRunners(): Built {
  const dir = mkdtempSync(join(tmpdir(), 'ul-dhcp-build-'));
  execFileSync(
    join(ROOT, 'node_modules/.bin/tsc'),
    ['--outDir', dir, '--rootDir', ROOT, '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--strict', '--skipLibCheck', '--esModuleInterop', '--types', 'node', join(ROOT, 'test/dhcp/runner.ts'), join(ROOT, 'test/dhcp/client.ts')],
    { cwd: ROOT, stdio: 'pipe' },
  );
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  // The agent's addon where the compiled agent/tftp/native-data-path.js looks for it: the server's
  // sockets then take the native path (agent/dhcp/udp.ts), as in the agent.
  if (existsSync(join(ROOT, 'agent/tftp/native/build'))) symlinkSync(join(ROOT, 'agent/tftp/native'), join(dir, 'agent/tftp/native'));
  return { dir, runner: join(dir, 'test/dhcp/runner.js'), client: join(dir, 'test/dhcp/client.js') };
}

export type ServerEvent = { event: string; [k: string]: unknown };

/** The DHCP server as a child process inside a namespace, with its stdout events. */
export class ServerProc {
  readonly events: ServerEvent[] = [];
  private waiters: Array<() => void> = [];
  exited = false;

  private constructor(
    readonly proc: ChildProcess,
    readonly stderrFile: string,
  ) {}

  static async start(ns: NetNs, built: Built, config: object, workDir: string, name = 'server'): Promise<ServerProc> {
    const cfgFile = join(workDir, `${name}.json`);
    writeFileSync(cfgFile, JSON.stringify(config));
    const stderrFile = join(workDir, `${name}.stderr.log`);
    const proc = ns.spawn(['node', built.runner, cfgFile]);
    const sp = new ServerProc(proc, stderrFile);
    const chunks: Buffer[] = [];
    proc.stderr!.on('data', (d: Buffer) => {
      chunks.push(d);
      // A killed server's last stderr can arrive after its exit, when the suite already removed the work dir.
      try {
        writeFileSync(stderrFile, Buffer.concat(chunks));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        sp.events.push(JSON.parse(line));
      } catch {
        sp.events.push({ event: 'stdout', line });
      }
      for (const w of sp.waiters.splice(0)) w();
    });
    proc.on('exit', () => {
      sp.exited = true;
      for (const w of sp.waiters.splice(0)) w();
    });
    await sp.waitFor((e) => e.event === 'ready', 'server ready');
    return sp;
  }

  /** Resolves with the first event (from `from` on) matching `pred`; rejects if the process exits first. */
  async waitFor(pred: (e: ServerEvent) => boolean, what: string, from = 0): Promise<ServerEvent> {
    for (;;) {
      const hit = this.events.slice(from).find(pred);
      if (hit) return hit;
      if (this.exited) throw new Error(`server exited while waiting for ${what}; stderr:\n${this.stderr().slice(-3000)}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Ask the server for its leases (SIGUSR1) and wait for the answer. */
  async leases(): Promise<Array<{ mac: string; address: string; state: string; subnet: string; hostname?: string }>> {
    const from = this.events.length;
    process.kill(this.proc.pid!, 'SIGUSR1');
    const e = await this.waitFor((x) => x.event === 'leases', 'leases', from);
    return e.leases as Array<{ mac: string; address: string; state: string; subnet: string }>;
  }

  leaseEvents(): ServerEvent[] {
    return this.events.filter((e) => e.event === 'lease-event');
  }

  stderr(): string {
    return existsSync(this.stderrFile) ? readFileSync(this.stderrFile, 'utf8') : '';
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.proc.once('exit', () => r()));
    process.kill(this.proc.pid!, signal);
    await done;
  }
}

/** A rack: namespace with bridge br0 at 198.18.0.1/24. */
export function makeRack(): NetNs {
  const ns = new NetNs('uldhcp');
  ns.addBridge('br0', '198.18.0.1/24');
  return ns;
}

export const SERVER = '198.18.0.1';

/** What every DHCP real-client suite stands on: the compiled runners, a work dir and a rack namespace. */
export interface DhcpSuite {
  built: Built;
  work: string;
  rack: NetNs;
}

/** Build the runners, make the work dir and the rack; undoes what it made if a step fails. */
export function openDhcpSuite(workPrefix: string): DhcpSuite {
  const built = buildRunners();
  let work: string | undefined;
  try {
    work = mkdtempSync(join(tmpdir(), workPrefix));
    return { built, work, rack: makeRack() };
  } catch (err) {
    closeDhcpSuite({ built, work });
    throw err;
  }
}

/** Kill the server (if any), then remove the rack, the work dir and the runners, even when a step throws. */
export async function closeDhcpSuite(suite: Partial<DhcpSuite>, server?: ServerProc): Promise<void> {
  try {
    await server?.kill('SIGKILL');
  } finally {
    suite.rack?.destroy();
    if (suite.work) rmSync(suite.work, { recursive: true, force: true });
    if (suite.built) rmSync(suite.built.dir, { recursive: true, force: true });
  }
}

// ---- busybox udhcpc -----------------------------------------------------------------------------------

export interface UdhcpcLine {
  event: string;
  ip?: string;
  router?: string;
  dns?: string;
  lease?: string;
  subnet?: string;
  serverid?: string;
  boot_file?: string;
  siaddr?: string;
}

/** Writes a udhcpc script that records each event and configures the address (so renewals can unicast). */
export function udhcpcScript(dir: string, name: string): { script: string; log: string } {
  const log = join(dir, `${name}.udhcpc.log`);
  const script = join(dir, `${name}.udhcpc.sh`);
  writeFileSync(
    script,
    `#!/bin/sh
echo "event=$1 ip=$ip router=$router dns=$dns lease=$lease subnet=$subnet serverid=$serverid boot_file=$boot_file siaddr=$siaddr" >> ${log}
case "$1" in
  deconfig) ip addr flush dev "$interface" ;;
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
esac
exit 0
`,
  );
  chmodSync(script, 0o755);
  return { script, log };
}

export function readUdhcpcLog(log: string): UdhcpcLine[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => Object.fromEntries(line.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) as unknown as UdhcpcLine);
}

/** Poll a file-backed log until `pred` holds (the client runs in another process). */
export async function until<T>(f: () => T | undefined, what: string, tries = 600, everyMs = 100): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = f();
    if (v !== undefined && v !== null && v !== false) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** One-shot udhcpc: obtain a lease and quit. Returns the recorded events. */
export function udhcpcOnce(client: NetNs, dir: string, name: string, extra: string[] = []): UdhcpcLine[] {
  const { script, log } = udhcpcScript(dir, name);
  try {
    client.exec(['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '2', '-s', script, ...extra]);
  } catch (e) {
    throw new Error(`udhcpc failed: ${(e as { stderr?: string }).stderr ?? e}`);
  }
  return readUdhcpcLog(log);
}

// ---- ISC dhclient -------------------------------------------------------------------------------------

export interface Dhclient {
  script: string;
  log: string;
  leaseFile: string;
  pidFile: string;
}

/** dhclient-script replacement: records `reason` and the new lease, configures the address. */
export function dhclientFiles(dir: string, name: string): Dhclient {
  const d = join(dir, `${name}.dhclient`);
  mkdirSync(d, { recursive: true });
  const log = join(d, 'events.log');
  const script = join(d, 'script.sh');
  writeFileSync(
    script,
    `#!/bin/sh
echo "reason=$reason ip=$new_ip_address router=$new_routers dns=$(echo $new_domain_name_servers | tr ' ' ,) lease=$new_dhcp_lease_time mask=$new_subnet_mask server=$new_dhcp_server_identifier old=$old_ip_address" >> ${log}
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT) ip addr flush dev "$interface"; ip addr add "$new_ip_address/24" dev "$interface" ;;
  RELEASE|EXPIRE|FAIL|STOP) ip addr flush dev "$interface" ;;
esac
exit 0
`,
  );
  chmodSync(script, 0o755);
  return { script, log, leaseFile: join(d, 'dhclient.leases'), pidFile: join(d, 'dhclient.pid') };
}

export function readDhclientLog(log: string): Array<Record<string, string>> {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => Object.fromEntries(line.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])));
}

/** `dhclient -1`: returns once bound (dhclient then daemonizes; stop it with `dhclientStop`). */
export function dhclientOnce(client: NetNs, d: Dhclient): void {
  client.exec(['dhclient', '-v', '-1', '-sf', d.script, '-lf', d.leaseFile, '-pf', d.pidFile, 'eth0']);
}

/** `dhclient -r`: release the lease and stop the daemon. */
export function dhclientRelease(client: NetNs, d: Dhclient): void {
  client.exec(['dhclient', '-v', '-r', '-sf', d.script, '-lf', d.leaseFile, '-pf', d.pidFile, 'eth0']);
}

/** Stop the daemonized dhclient without releasing. */
export function dhclientStop(d: Dhclient): void {
  if (!existsSync(d.pidFile)) return;
  const pid = Number(readFileSync(d.pidFile, 'utf8').trim());
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  rmSync(d.pidFile, { force: true });
}
