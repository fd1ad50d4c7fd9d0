import type { TaskKind } from '../../shared/protocol/task-kinds.js';
import { MACHINES } from '../machines/resources.js';
import type { Store } from '../store/types.js';

/** What a succeeded task of one kind changes in the central's inventory (the central's record follows the site). */
export type TaskEffect = (store: Store, task: { machine: string | null; payload: unknown }) => Promise<void>;

async function patchMachine(store: Store, id: string | null, change: Record<string, unknown>): Promise<void> {
  const m = id ? store.get<{ id: string }>(MACHINES, id) : undefined;
  if (m) await store.put(MACHINES, { ...m, ...change, updatedAt: new Date().toISOString() });
}

/**
 * The central's side of every task kind, one entry per kind: `null` when a success changes nothing here
 * (the lifecycle follows image-deploy and release through its own task-finished listener). A kind added
 * to shared/protocol/task-kinds.ts without an entry here does not compile.
 */
export const TASK_EFFECTS: Record<TaskKind, TaskEffect | null> = {
  ping: null,
  'sync-state': null,
  'set-netboot': (store, t) => patchMachine(store, t.machine, { netboot: (t.payload as { netboot: boolean }).netboot }),
  'set-bootenv': (store, t) => patchMachine(store, t.machine, { bootenv: (t.payload as { bootenv: string }).bootenv }),
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
