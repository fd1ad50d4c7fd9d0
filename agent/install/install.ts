import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { renderUnit, selfCommand, systemdRunning } from '../../shared/systemd/unit.js';
import { joinCentral } from '../join/join.js';

export const AGENT_UNIT = 'underlay-agent.service';
export const AGENT_STATE_DIRECTORY = 'underlay-agent';
export const AGENT_ENV_FILE = '/etc/default/underlay-agent';

/**
 * The agent's unit. It keeps one capability: CAP_NET_BIND_SERVICE (DHCP 67, TFTP 69). CAP_NET_RAW is not
 * needed: DHCP replies are UDP broadcasts or unicasts through node:dgram (no raw or packet sockets, no
 * SO_BINDTODEVICE; agent/dhcp/addressing.ts), ipmitool talks UDP. AF_NETLINK: the interface list.
 */
export function agentUnit(cliPath: string): string {
  return renderUnit({
    description: 'Underlay site agent (DHCP, TFTP, HTTP boot; dials out to the central)',
    exec: [...selfCommand(cliPath), 'agent', 'run', '--state', `%S/${AGENT_STATE_DIRECTORY}`],
    stateDirectory: AGENT_STATE_DIRECTORY,
    environmentFile: AGENT_ENV_FILE,
    capabilities: ['CAP_NET_BIND_SERVICE'],
    addressFamilies: ['AF_INET', 'AF_INET6', 'AF_UNIX', 'AF_NETLINK'],
  });
}

export interface InstallOptions {
  central?: string;
  token: string;
  /** file-system root to install into ("/" on the host; a directory for tests and images) */
  root: string;
  start: boolean;
  name?: string;
  force?: boolean;
  /** UNDERLAY_* settings for the env file (interface, address, dhcp mode …) */
  env: Record<string, string>;
  cliPath: string;
  log: (line: string) => void;
}

export type InstallResult = { unitPath: string; envPath: string; statePath: string; agentId: string; site: string; started: boolean; reason?: string; noSystemd?: boolean };

function envFileText(env: Record<string, string>): string {
  const lines = Object.entries(env).map(([k, v]) => {
    if (!/^UNDERLAY_[A-Z0-9_]+$/.test(k)) throw new Error(`${k} is not an UNDERLAY_* setting`);
    if (/[\n\r]/.test(v)) throw new Error(`${k}: a value on one line`);
    return `${k}=${JSON.stringify(v)}`;
  });
  return `# Settings of the Underlay site agent (UNDERLAY_* variables; see "underlay agent run --help").\n${lines.join('\n')}\n`;
}

/**
 * `underlay agent install`: the unit and the env file, the joined identity in the unit's state
 * directory, then `systemctl enable --now` — only where systemd runs the host; elsewhere (a container,
 * --root, --no-start) everything is left in place and the result says why it was not started.
 */
export async function installAgent(o: InstallOptions): Promise<InstallResult> {
  const at = (p: string) => join(o.root, p);
  const unitPath = at(`/etc/systemd/system/${AGENT_UNIT}`);
  const envPath = at(AGENT_ENV_FILE);
  const statePath = at(`/var/lib/${AGENT_STATE_DIRECTORY}`);
  const env = envFileText(o.env);
  const unit = agentUnit(o.cliPath);
  // Join first: a refused token leaves nothing behind.
  mkdirSync(statePath, { recursive: true, mode: 0o700 });
  const id = await joinCentral({ central: o.central, token: o.token, state: statePath, name: o.name, force: o.force });
  for (const [path, text, mode] of [[unitPath, unit, 0o644], [envPath, env, 0o644]] as const) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text, { mode });
  }
  o.log(`joined: agent ${id.agentId} at site ${id.site}; identity in ${statePath}`);
  o.log(`wrote ${unitPath} and ${envPath}`);
  const base = { unitPath, envPath, statePath, agentId: id.agentId, site: id.site };
  if (!o.start) return { ...base, started: false, reason: '--no-start' };
  if (!systemdRunning(o.root)) return { ...base, started: false, reason: `systemd is not running here (no ${at('/run/systemd/system')}: a container, another init, or an image root)`, noSystemd: true };
  if (o.root !== '/') return { ...base, started: false, reason: `--root ${o.root}: not the running system` };
  execFileSync('systemctl', ['daemon-reload'], { stdio: 'inherit' });
  execFileSync('systemctl', ['enable', '--now', AGENT_UNIT], { stdio: 'inherit' });
  return { ...base, started: true };
}
