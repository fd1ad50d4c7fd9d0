import { ImageRef } from '../../shared/api/images.js';
import type { DeployRequest, ReleaseRequest } from '../../shared/api/lifecycle.js';
import type { Machine, ParamDef } from '../../shared/api/resources.js';
import { InvalidError, NotFoundError, UnavailableError } from '../../shared/errors/domain-errors.js';
import { ARTIFACTS, type ArtifactDoc } from '../artifacts/routes.js';
import { checkParamValues } from '../params/resources.js';
import { sealParams } from '../secrets/seal.js';
import { sealingFor } from '../params/sealing.js';
import type { Store } from '../store/types.js';
import type { TaskDoc, TaskService } from '../tasks/service.js';
import type { Lifecycle } from './lifecycle.js';
import { transition } from './state-machine.js';

/** Who asked (recorded in the event). */
export interface Caller {
  tokenId?: string;
}

/** The boot environment a cloud-init deploy renders its configs from unless the request names one. */
export const DEFAULT_CLOUD_INIT_BOOTENV = 'debian-cloud';
/** How long an image-deploy or release task may wait for its runner before it expires (then the machine fails). */
export const ACTION_TASK_TTL = '2h';

export interface ActionResult {
  machine: Machine;
  task?: TaskDoc;
}

/** The newest image artifact named `name`, as a deploy task carries it. */
export function resolveImage(store: Store, name: string): ImageRef {
  const docs = store.list<ArtifactDoc>(ARTIFACTS, { where: { name } }).items.filter((d) => d.image && typeof d.image === 'object');
  const doc = docs.sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)))[0];
  if (!doc) throw new InvalidError(`image "${name}" is not known: push one with "underlay images push FILE --name ${name}"`, [{ path: 'image', message: 'unknown image' }]);
  const ref = ImageRef.safeParse({ name, sha256: doc.sha256, size: doc.size, ...(doc.image as object) });
  if (!ref.success) throw new InvalidError(`artifact ${doc.sha256} named "${name}" has no valid image description (format, rawSha256, rawSize); push it again as an image`, [{ path: 'image', message: 'not an image' }]);
  return ref.data;
}

function requireBootenv(store: Store, name: string): void {
  if (name === 'discovery' || name === 'local') return;
  const env = store.counts().bootenvs === undefined ? undefined : store.findUnique<{ id: string; onlyUnknown?: boolean }>('bootenvs', 'name', name);
  if (!env) throw new InvalidError(`boot environment "${name}" does not exist (import one with "underlay bootenvs import images")`, [{ path: 'bootenv', message: 'unknown boot environment' }]);
  if (env.onlyUnknown) throw new InvalidError(`boot environment "${name}" is only for unknown machines`, [{ path: 'bootenv', message: 'only for unknown machines' }]);
}

function taskService(lc: Lifecycle): TaskService {
  const tasks = lc.opts.tasks();
  if (!tasks) throw new UnavailableError('this central runs without the tasks feature');
  return tasks;
}

function current(lc: Lifecycle, id: string): Machine {
  const m = lc.machine(id);
  if (!m) throw new NotFoundError(`machine "${id}" not found`);
  return m;
}

/**
 * Creates the action's task, then moves the machine; if the move cannot be written, the task is
 * cancelled (best effort) so no task runs for a machine whose state never said so.
 */
async function withTask(lc: Lifecycle, task: Parameters<TaskService['create']>[0], move: (t: TaskDoc) => Promise<Machine>): Promise<ActionResult> {
  const tasks = taskService(lc);
  const t = await tasks.create(task);
  try {
    return { machine: await move(t), task: t };
  } catch (e) {
    await tasks.cancel(t.id).catch((err: Error) => lc.logger.error({ err, task: t.id }, 'could not cancel the task of a failed lifecycle action'));
    throw e;
  }
}

/**
 * Deploy: resolve the image, merge the params, point the machine at the boot environment its deployed
 * OS's configs render from (netboot on: the runner environment), sign the image-deploy task → deploying.
 */
export function deploy(lc: Lifecycle, machineId: string, req: DeployRequest, caller: Caller): Promise<ActionResult> {
  return lc.exclusive(machineId, async () => {
    const m = current(lc, machineId);
    transition(m, 'deploy'); // refuse early: nothing is signed for a machine that cannot deploy
    const image = resolveImage(lc.store, req.image);
    const bootenv = req.bootenv ?? (req.config === 'cloud-init' ? DEFAULT_CLOUD_INIT_BOOTENV : undefined);
    if (!bootenv) throw new InvalidError('an ignition deploy names the boot environment its Ignition config renders from (bootenv)', [{ path: 'bootenv', message: 'required for config ignition' }]);
    requireBootenv(lc.store, bootenv);
    const merged = { ...m.params, ...(req.params ?? {}) };
    checkParamValues(req.params ?? {}, (n) => lc.store.findUnique<ParamDef>('params', 'name', n), 'params');
    const params = sealParams(sealingFor(lc.store), merged, { site: m.site }, 'params');
    const payload = { image, config: req.config, ...(req.disk ? { disk: req.disk } : {}) };
    return withTask(lc, { site: m.site, machine: m.id, kind: 'image-deploy', payload, ttl: ACTION_TASK_TTL }, (t) =>
      lc.fire(current(lc, machineId), 'deploy', { kind: 'action', action: 'deploy', ...caller, taskId: t.id }, {
        reason: `deploying image ${image.name} (${image.sha256.slice(0, 12)}) with ${req.config}`,
        change: {
          params,
          bootenv,
          netboot: true,
          deployment: { action: 'deploy', taskId: t.id, image: image.name, config: req.config, ...(req.disk ? { disk: req.disk } : {}), startedAt: t.createdAt },
        },
      }),
    );
  });
}

/** Release: the runner wipes the disks (quick or secure) and netboots back into discovery → releasing. */
export function release(lc: Lifecycle, machineId: string, req: ReleaseRequest, caller: Caller): Promise<ActionResult> {
  return lc.exclusive(machineId, async () => {
    const m = current(lc, machineId);
    transition(m, 'release');
    return withTask(lc, { site: m.site, machine: m.id, kind: 'release', payload: { wipe: req.wipe }, ttl: ACTION_TASK_TTL }, (t) =>
      lc.fire(current(lc, machineId), 'release', { kind: 'action', action: 'release', ...caller, taskId: t.id }, {
        reason: `releasing (${req.wipe} wipe)`,
        change: { bootenv: 'discovery', netboot: true, deployment: { action: 'release', taskId: t.id, wipe: req.wipe, ...(req.powerOff ? { powerOff: true } : {}), startedAt: t.createdAt } },
      }),
    );
  });
}

/**
 * Rescue: boot the runner environment without touching the disks (boot environment discovery, netboot
 * on). A deployed machine runs the installed OS's runner: it gets a reboot task to get there.
 */
export function rescue(lc: Lifecycle, machineId: string, caller: Caller): Promise<ActionResult> {
  return lc.exclusive(machineId, async () => {
    const m = current(lc, machineId);
    transition(m, 'rescue');
    const change = { bootenv: 'discovery', netboot: true };
    const cause = { kind: 'action' as const, action: 'rescue', ...caller };
    if (m.state !== 'deployed') {
      return { machine: await lc.fire(m, 'rescue', cause, { reason: 'rescue: runner environment, disks untouched', change: { ...change, deployment: { action: 'rescue', startedAt: new Date().toISOString() } } }) };
    }
    return withTask(lc, { site: m.site, machine: m.id, kind: 'reboot', payload: {} }, (t) =>
      lc.fire(current(lc, machineId), 'rescue', { ...cause, taskId: t.id }, {
        reason: 'rescue: rebooting into the runner environment, disks untouched',
        change: { ...change, deployment: { action: 'rescue', taskId: t.id, startedAt: t.createdAt } },
      }),
    );
  });
}
