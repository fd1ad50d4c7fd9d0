/**
 * A rack without VMs for the Ansible connection tests and benchmark: a real central and a real site agent
 * (`underlay agent run` on 127.0.0.1, DHCP off) and N "machines" that are the real machine runner
 * (images/discovery/runner.sh) under busybox sh on this host, each with its own state directory and HOME.
 * A machine gets its boot token the way a netbooting one does (GET /ipxe/script from the agent, parsed
 * for the kernel line), claims it, and long-polls the agent for signed tasks.
 *
 * Everything it starts is killed by PID and every temp dir removed by `stop()` (safe after a partial start).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpGet } from '../support/http-get.js';
import { freePort, REPO, spawnCentral, tempDir, type CentralProcess } from '../central/support.js';
import { api, joinAgent, spawnAgent, waitFor, type AgentProcess } from '../agent-link/support.js';

export const SITE = 'lab';
const LIB = join(REPO, 'images/discovery/lib.sh');
const RUNNER = join(REPO, 'images/discovery/runner.sh');

/** A boot environment like `discovery` that any known machine may have: the runner's kernel line. */
const HOSTRUN_BOOTENV = {
  name: 'hostrun',
  os: { family: 'underlay-discovery' },
  kernel: { url: 'discovery/vmlinuz' },
  bootParams: 'underlay.url={{ agent.httpUrl }} underlay.token={{ token }} underlay.mac=${mac} underlay.machine={{ machine.id }} underlay.pubkey={{ agent.pubkey }}',
};

export interface HostMachine {
  name: string;
  mac: string;
  id: string;
  /** The runner's HOME (its ansible remote tmp) and the root under which the test playbook writes. */
  home: string;
  state: string;
  proc?: ChildProcess;
  log: string;
}

export class HostRack {
  central!: CentralProcess;
  agent?: AgentProcess;
  agentUrl = '';
  operatorToken = '';
  readonly dir = tempDir('underlay-hostrack-');
  readonly machines: HostMachine[] = [];

  static async start(names: string[], facts: (name: string) => Record<string, unknown> = () => ({})): Promise<HostRack> {
    const rack = new HostRack();
    try {
      await rack.init(names, facts);
    } catch (e) {
      await rack.stop();
      throw e;
    }
    return rack;
  }

  private async init(names: string[], facts: (name: string) => Record<string, unknown>): Promise<void> {
    this.central = await spawnCentral();
    await api(this.central, 'POST', '/api/v1/sites', { name: SITE });
    await api(this.central, 'POST', '/api/v1/bootenvs', HOSTRUN_BOOTENV);
    this.operatorToken = (await api<{ token: string }>(this.central, 'POST', '/api/v1/tokens', { role: 'operator', name: 'ansible' })).token;
    names.forEach((name, i) => {
      const mac = `52:54:00:15:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
      const home = join(this.dir, name, 'home');
      const state = join(this.dir, name, 'state');
      mkdirSync(home, { recursive: true });
      mkdirSync(state, { recursive: true });
      this.machines.push({ name, mac, id: '', home, state, log: '' });
    });
    for (const m of this.machines) {
      m.id = (await api<{ id: string }>(this.central, 'POST', '/api/v1/machines', { name: m.name, site: SITE, macs: [m.mac], bootenv: 'hostrun', facts: facts(m.name) })).id;
    }
    const agentState = join(this.dir, 'agent');
    await joinAgent(this.central, SITE, agentState, 'agent-lab');
    const httpPort = await freePort();
    const tftpPort = await freePort();
    mkdirSync(join(this.dir, 'boot'), { recursive: true });
    this.agentUrl = `http://127.0.0.1:${httpPort}`;
    this.agent = spawnAgent(agentState, {
      env: { UNDERLAY_ADDRESS: '127.0.0.1', UNDERLAY_DHCP: 'off', UNDERLAY_HTTP_PORT: String(httpPort), UNDERLAY_TFTP_PORT: String(tftpPort), UNDERLAY_BOOT_DIR: join(this.dir, 'boot'), UNDERLAY_ALLOW_UNPINNED: 'true', UNDERLAY_LOG_LEVEL: process.env.UL_TRACE ? 'info' : 'warn' },
    });
    for (const m of this.machines) await this.startRunner(m);
  }

  /** The kernel line the agent renders for this machine (a fresh single-use boot token each time). */
  private async kernelLine(m: HostMachine): Promise<string> {
    return waitFor(`boot script with a token for ${m.name}${this.agent ? `\n${this.agent.stderr.slice(-2000)}` : ''}`, async () => {
      const r = await httpGet(`${this.agentUrl}/ipxe/script?mac=${m.mac}&platform=pcbios`);
      const line = r.body.toString().split('\n').find((l) => l.includes('underlay.token='));
      return r.status === 200 && line && line.includes(`underlay.machine=${m.id}`) ? line : undefined;
    }, 60_000, 200);
  }

  async startRunner(m: HostMachine): Promise<void> {
    const line = await this.kernelLine(m);
    writeFileSync(join(m.state, '..', 'cmdline'), line.split(/\s+/).filter((w) => w.startsWith('underlay.')).join(' ') + '\n');
    const script = `. "$UNDERLAY_LIB"; ul_init_env; ul_claim || exit 3; ${process.env.UL_TRACE ? "PS4='+$EPOCHREALTIME '; export PS4; " : ''}exec busybox sh ${process.env.UL_TRACE ? '-x ' : ''}"${RUNNER}"`;
    m.proc = spawn('busybox', ['sh', '-c', script], {
      env: {
        PATH: process.env.PATH,
        HOME: m.home,
        UNDERLAY_LIB: LIB,
        UNDERLAY_STATE: m.state,
        UNDERLAY_CMDLINE_FILE: join(m.state, '..', 'cmdline'),
        UNDERLAY_NO_CONSOLE: '1',
        UNDERLAY_POWER_CMD: 'echo',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true, // its own process group: stop() kills the long-poll curl with it
    });
    m.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (m.log = (m.log + d).slice(process.env.UL_TRACE ? -2_000_000 : -20_000)));
    await waitFor(`${m.name}'s runner polling\n${m.log}`, () => {
      if (m.proc!.exitCode !== null) throw new Error(`runner of ${m.name} exited ${m.proc!.exitCode}: ${m.log}`);
      return m.log.includes('runner polling');
    }, 30_000, 100);
  }

  async stop(): Promise<void> {
    if (process.env.UL_TRACE) {
      const { writeFileSync: w } = await import('node:fs');
      // beside the rack's directory, which is removed below: the logs of a traced run outlive it
      w(`${this.dir}-agent.log`, this.agent?.stderr ?? '');
      for (const m of this.machines) w(`${this.dir}-${m.name}.log`, m.log);
    }
    await Promise.all(this.machines.map(async (m) => {
      if (!m.proc?.pid || m.proc.exitCode !== null || m.proc.signalCode !== null) return;
      const gone = new Promise((r) => m.proc!.once('exit', r));
      try {
        process.kill(-m.proc.pid, 'SIGKILL');
      } catch {
        return; // already gone
      }
      await gone;
    }));
    await this.agent?.kill();
    await this.central?.cleanup();
    if (!process.env.UL_KEEP) {
      const { rmSync } = await import('node:fs');
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
