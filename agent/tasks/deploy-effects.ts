import type { Logger } from '../../shared/log/logger.js';
import type { DesiredStateCache } from '../state/desired-state-cache.js';
import type { OsCredentials } from '../http/os-credentials.js';

export interface DeployEffectDeps {
  desiredState: Pick<DesiredStateCache, 'override'>;
  osCredentials?: Pick<OsCredentials, 'revoke'>;
  logger: Logger;
}

/**
 * What the agent itself does when a machine's runner finishes a deploy or a release, before the runner's
 * report is acknowledged (the runner reboots right after the acknowledgement). Local and durable, so it
 * works with the central down and survives an agent restart:
 * - image-deploy succeeded → netboot off for the machine (the firmware boots the written disk; no
 *   reinstall loop);
 * - release succeeded → netboot on again (the machine boots discovery) and the installed OS's credential
 *   revoked.
 * Returns what changed, for the log.
 */
export async function applyRunnerOutcome(d: DeployEffectDeps, task: { kind: string; machine?: string | null }, state: string): Promise<string | null> {
  if (state !== 'succeeded' || !task.machine) return null;
  if (task.kind === 'image-deploy') {
    const ok = await d.desiredState.override(task.machine, { netboot: false });
    d.logger.info({ machine: task.machine, applied: ok }, 'image deployed: netboot off, the machine boots its disk');
    return ok ? 'netboot off' : null;
  }
  if (task.kind === 'release') {
    const ok = await d.desiredState.override(task.machine, { netboot: true });
    await d.osCredentials?.revoke(task.machine);
    d.logger.info({ machine: task.machine, applied: ok }, 'machine released: netboot on, installed-OS credential revoked');
    return ok ? 'netboot on' : null;
  }
  return null;
}

/** When a task is handed to a machine: a new image-deploy ends the installed OS's credential. */
export async function applyHandOut(d: DeployEffectDeps, task: { kind: string; machine: string }): Promise<void> {
  if (task.kind === 'image-deploy') await d.osCredentials?.revoke(task.machine);
}
