import type { TaskKind } from '../../shared/protocol/task-kinds.js';
import { MACHINES } from '../machines/resources.js';
import type { Doc, Store, WriteOp } from '../store/types.js';

/**
 * What a succeeded task of one kind changes in the central's inventory (the central's record follows the
 * site), as writes that go into the same commit as the task's succeeded state: a client that sees the task
 * succeeded sees its effect, and a crash cannot keep one without the other (a redelivered report is a
 * duplicate and would never apply a lost effect). `pending` holds documents already changed by earlier
 * effects of the same commit, so two tasks of one batch on one machine both take effect.
 */
export type TaskEffect = (store: Store, task: { machine: string | null; payload: unknown }, pending: Map<string, Doc>) => WriteOp[];

function patchMachine(store: Store, pending: Map<string, Doc>, id: string | null, change: Record<string, unknown>): WriteOp[] {
  if (!id) return [];
  const key = `${MACHINES}/${id}`;
  const m = pending.get(key) ?? store.get<Doc>(MACHINES, id);
  if (!m) return [];
  const doc = { ...m, ...change, updatedAt: new Date().toISOString() };
  pending.set(key, doc);
  return [{ type: 'put', collection: MACHINES, doc }];
}

/**
 * The central's side of every task kind, one entry per kind: `null` when a success changes nothing here
 * (the lifecycle follows image-deploy and release through its own task-finished listener). A kind added
 * to shared/protocol/task-kinds.ts without an entry here does not compile.
 */
export const TASK_EFFECTS: Record<TaskKind, TaskEffect | null> = {
  ping: null,
  'sync-state': null,
  'set-netboot': (store, t, pending) => patchMachine(store, pending, t.machine, { netboot: (t.payload as { netboot: boolean }).netboot }),
  'set-bootenv': (store, t, pending) => patchMachine(store, pending, t.machine, { bootenv: (t.payload as { bootenv: string }).bootenv }),
  'run-script': null,
  'image-deploy': null,
  release: null,
  reboot: null,
  poweroff: null,
  power: null,
  'boot-device': null,
  /** The certificate is issued through the runner's CSR (a machine-csr agent event), not by the task. */
  'cert-request': null,
  /** Ansible's connection (docs/ansible.md): what the commands change stays on the machine. */
  exec: null,
  'put-file': null,
  'fetch-file': null,
};
