import type { Machine } from '../../shared/api/resources.js';
import type { PowerService } from './service.js';

/**
 * `machines deploy` of a machine with a BMC that is not known to be on: PXE for the next boot, then
 * power on (two signed tasks, run in order by its agent), so the runner that writes the image starts.
 * A released machine whose release asked for it (`release --power-off`) is powered off once it is
 * back in `ready`.
 */
export async function powerOnForDeploy(power: PowerService, m: Machine, before?: Machine): Promise<void> {
  if (!m.bmc) return;
  if (m.state === 'deploying' && before?.state !== 'deploying' && m.power?.state !== 'on') {
    await power.bootDevice(m.id, 'pxe', false, {}, 'deploy: PXE for the next boot (the machine is not known to be on)');
    await power.power(m.id, 'on', {}, 'deploy: power on into the runner');
  }
  if (m.state === 'ready' && before?.state === 'releasing' && m.deployment?.action === 'release' && m.deployment.powerOff) {
    await power.power(m.id, 'off', {}, 'release --power-off: released, powering off');
  }
}
