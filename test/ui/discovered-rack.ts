/**
 * A rack for the console's browser test: HostRack's real central and real site agent, and machines that
 * the agent has never heard of and that are *discovered* the real way, without VMs: for each MAC the
 * test fetches the agent's boot script (an unknown MAC gets the discovery environment with a single-use
 * boot token), then runs the discovery image's own scripts on this host under busybox sh: claim the token,
 * images/discovery/collect.sh (facts from this host's /sys and /proc, posted to the agent, forwarded to the
 * central, which creates the machine) and runner.sh (long-polls the agent for signed tasks).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../agent-link/support.js';
import { HostRack, type HostMachine } from '../ansible/host-rack.js';
import { REPO } from '../central/support.js';
import { httpGet } from '../support/http-get.js';

const DISCOVERY = join(REPO, 'images/discovery');

export async function startDiscoveredRack(macs: string[]): Promise<HostRack> {
  const rack = await HostRack.start([]);
  try {
    for (const [i, mac] of macs.entries()) await discover(rack, `disc-${i}`, mac);
  } catch (e) {
    await rack.stop();
    throw e;
  }
  return rack;
}

async function discover(rack: HostRack, label: string, mac: string): Promise<void> {
  const base = join(rack.dir, label);
  const m: HostMachine = { name: label, mac, id: '', home: join(base, 'home'), state: join(base, 'state'), log: '' };
  mkdirSync(m.home, { recursive: true });
  mkdirSync(m.state, { recursive: true });
  rack.machines.push(m); // stop() kills its process group
  const line = await waitFor(`discovery boot script for ${mac}`, async () => {
    const r = await httpGet(`${rack.agentUrl}/ipxe/script?mac=${mac}&platform=pcbios`);
    return r.status === 200 ? r.body.toString().split('\n').find((l) => l.includes('underlay.token=')) : undefined;
  }, 60_000, 200);
  writeFileSync(join(base, 'cmdline'), line.split(/\s+/).filter((w) => w.startsWith('underlay.')).join(' ') + '\n');
  const script = `. "$UNDERLAY_LIB"; ul_init_env; ul_claim || exit 3; sh "${DISCOVERY}/collect.sh" || exit 4; exec busybox sh "${DISCOVERY}/runner.sh"`;
  m.proc = spawn('busybox', ['sh', '-c', script], {
    env: { PATH: process.env.PATH, HOME: m.home, UNDERLAY_LIB: join(DISCOVERY, 'lib.sh'), UNDERLAY_STATE: m.state, UNDERLAY_CMDLINE_FILE: join(base, 'cmdline'), UNDERLAY_NO_CONSOLE: '1', UNDERLAY_POWER_CMD: 'echo' },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  m.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (m.log = (m.log + d).slice(-20_000)));
  await waitFor(`${label} (${mac}) discovered and polling\n${m.log}`, () => {
    if (m.proc!.exitCode !== null) throw new Error(`discovery of ${mac} exited ${m.proc!.exitCode}: ${m.log}`);
    return m.log.includes('runner polling');
  }, 60_000, 100);
  const found = await rack.central.request('GET', `/api/v1/machines?mac=${mac}`);
  const item = (found.json as { items: { id: string; name: string }[] }).items[0];
  if (!item) throw new Error(`${mac} polled but the central has no machine for it: ${m.log}`);
  m.id = item.id;
  m.name = item.name;
}
