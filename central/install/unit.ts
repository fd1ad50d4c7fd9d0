import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { renderUnit, selfCommand } from '../../shared/systemd/unit.js';

export const CENTRAL_UNIT = 'underlay-central.service';
export const CENTRAL_STATE_DIRECTORY = 'underlay-central';
export const CENTRAL_ENV_FILE = '/etc/default/underlay-central';

/**
 * The central's unit: no capability at all (it listens on 8443), its data in the unit's state directory, glibc's
 * malloc on transparent huge pages (a cold inventory render's first-touch page faults; docs/decisions.md).
 */
export function centralUnit(cliPath: string): string {
  return renderUnit({
    description: 'Underlay central registry (API, task signing, agent hub)',
    exec: [...selfCommand(cliPath), 'central', 'serve', '--data', `%S/${CENTRAL_STATE_DIRECTORY}`],
    stateDirectory: CENTRAL_STATE_DIRECTORY,
    environmentFile: CENTRAL_ENV_FILE,
    environment: ['GLIBC_TUNABLES=glibc.malloc.hugetlb=1'],
    capabilities: [],
    addressFamilies: ['AF_INET', 'AF_INET6', 'AF_UNIX', 'AF_NETLINK'],
  });
}

/** `underlay central unit`: prints the systemd unit (install it as /etc/systemd/system/underlay-central.service). */
export function registerCentralUnitCommand(central: Command): void {
  central
    .command('unit')
    .description(`print the hardened systemd unit: underlay central unit > /etc/systemd/system/${CENTRAL_UNIT}; settings (UNDERLAY_LISTEN, UNDERLAY_PUBLIC_URL …) in ${CENTRAL_ENV_FILE}`)
    .action(() => {
      process.stdout.write(centralUnit(fileURLToPath(new URL('../../shared/cli/underlay.js', import.meta.url))));
    });
}
