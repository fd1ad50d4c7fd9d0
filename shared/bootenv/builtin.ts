import { parseBootEnv, type BootEnv } from './schema.js';

/**
 * Boot environments the renderer needs even with an empty store (a site that has never synced).
 * `images/bootenvs/discovery` and `images/bootenvs/local` define the same things; a test keeps them equal.
 */
export const BUILTIN_DISCOVERY: BootEnv = parseBootEnv({
  name: 'discovery',
  description: 'Underlay discovery image: collects hardware facts, posts them to the agent, then runs signed tasks.',
  os: { family: 'underlay-discovery' },
  kernel: { url: 'discovery/vmlinuz' },
  initrds: [{ url: 'discovery/initrd.img' }],
  bootParams:
    'underlay.url={{ agent.httpUrl }} underlay.token={{ token }} underlay.mac=${mac} underlay.machine={{ machine.id }} underlay.pubkey={{ agent.pubkey }} console=ttyS0',
  onlyUnknown: true,
});

export const BUILTIN_LOCAL: BootEnv = parseBootEnv({
  name: 'local',
  description: 'Boot from the local disk (BIOS: sanboot drive 0x80; UEFI: exit to the firmware boot order).',
  os: { family: 'local' },
  local: true,
});
