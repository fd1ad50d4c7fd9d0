import { rmSync } from 'node:fs';
import sodium from 'libsodium-wrappers';
import type { Machine } from '../../shared/api/resources.js';
import { WorkflowCreate, type Workflow } from '../../shared/api/workflows.js';
import { silentLogger } from '../../shared/log/logger.js';
import { ALL_COLLECTIONS } from '../all-collections.test-support.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { lifecycleBench } from '../lifecycle/lifecycle.test-support.js';
import { onTaskFinished } from '../lifecycle/reports.js';
import { ServiceRegistry } from '../services/registry.js';
import { FileStore } from '../store/file-store.js';
import { TaskService, type TaskDoc } from '../tasks/service.js';
import { WORKFLOWS } from '../workflows/resources.js';
import { RunEngine } from './engine.js';

/**
 * A central's run engine over a real FileStore (lifecycleBench: site dc1, agent-1, an image), with the
 * service registry on a fake clock. `restart()` closes everything and opens the same data directory
 * again, as a restarted central does.
 */
export async function runsBench() {
  const b = await lifecycleBench();
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const key = sodium.crypto_sign_keypair().privateKey;
  const wire = (store: FileStore, tasks: TaskService, lc: Lifecycle) => {
    const registry = new ServiceRegistry(store, { now: () => clock, logger: silentLogger });
    const engine = new RunEngine({ store, changes: store.changes, logger: silentLogger, tasks, registry, lifecycle: lc });
    const offTasks = tasks.onTaskFinished((t) => engine.onTaskFinished(t));
    const offChanges = store.changes.on((c) => engine.onChange(c));
    return { registry, engine, off: () => (offTasks(), offChanges()) };
  };
  const env = { store: b.store as FileStore, tasks: b.tasks, lc: b.lc, ...wire(b.store as FileStore, b.tasks, b.lc) };
  let n = 0;
  const now = () => new Date().toISOString();
  const bench = {
    env,
    get store() {
      return env.store;
    },
    advance: (ms: number) => (clock += ms),
    machine: (i: number, over: Partial<Machine> = {}) =>
      b.machine({ id: `m-${i}`, name: `node-${i}`, macs: [`52:54:00:12:00:0${i}`], addresses: [{ address: `198.18.0.${10 + i}`, source: 'discovery', at: now() }], ...over }),
    workflow: async (body: unknown): Promise<Workflow> => {
      const w = { id: `wf-${++n}`, ...WorkflowCreate.parse(body), createdAt: now(), updatedAt: now() } as Workflow;
      await env.store.put(WORKFLOWS, w);
      return w;
    },
    machines: (...ids: string[]) => ids.map((id) => env.store.get<Machine>('machines', id)!),
    tasks: (): TaskDoc[] => env.store.list<TaskDoc>('tasks').items.sort((a, c) => a.seq - c.seq),
    tasksOf: (machine: string) => bench.tasks().filter((t) => t.machine === machine),
    /** The agent's report of a task's end (what a machine's runner sends). */
    finish: async (t: TaskDoc | string, state: 'succeeded' | 'failed' = 'succeeded', output?: string) => {
      const id = typeof t === 'string' ? t : t.id;
      await env.tasks.applyReport('agent-1', { type: 'report', id: `rep-${++n}`, taskId: id, state, at: now(), ...(output !== undefined ? { output } : {}), ...(state === 'failed' ? { exitCode: 1 } : {}) });
    },
    /** A member's heartbeat as the machine's agent relays it. */
    heartbeat: (service: string, member: string, status: 'passing' | 'critical' = 'passing') => env.registry.reportMemberStatus(service, member, status),
    settle: async () => {
      for (let i = 0; i < 5; i++) {
        await env.engine.idle();
        await new Promise((r) => setImmediate(r));
      }
    },
    /** Stops the engine, closes the store and opens the same directory again (a central restart). */
    restart: async () => {
      env.engine.stop();
      env.off();
      await env.store.close();
      const store = await FileStore.open({ dir: b.dir, collections: ALL_COLLECTIONS, logger: silentLogger });
      const tasks = new TaskService(store, key, silentLogger);
      const lc = new Lifecycle({ store, changes: store.changes, logger: silentLogger, tasks: () => tasks });
      tasks.onTaskFinished((t) => onTaskFinished(lc, t));
      Object.assign(env, { store, tasks, lc, ...wire(store, tasks, lc) });
      env.engine.resumeAll();
    },
    close: async () => {
      env.engine.stop();
      env.off();
      await env.registry.stop();
      if (env.store !== b.store) {
        await env.store.close();
        rmSync(b.dir, { recursive: true, force: true });
      } else await b.close();
    },
  };
  return bench;
}
