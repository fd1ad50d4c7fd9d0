import { MACHINES } from '../machines/resources.js';
import type { EventCause } from '../../shared/api/lifecycle.js';
import type { Machine } from '../../shared/api/resources.js';
import type { Logger } from '../../shared/log/logger.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { Store } from '../store/types.js';
import type { TaskService } from '../tasks/service.js';
import { commitMachine, DEFAULT_EVENTS_PER_MACHINE } from './machine-events.js';
import { transition, type Trigger } from './state-machine.js';

export interface LifecycleOptions {
  store: Store;
  changes: ChangeFeed;
  logger: Logger;
  /** The task service (created by the agents feature). */
  tasks: () => TaskService | undefined;
  /** Events kept per machine (default 200). */
  eventsPerMachine?: number;
}

/**
 * The machine lifecycle's core: fires triggers (central/lifecycle/state-machine.ts) and writes the
 * machine with its event in one commit. Changes to one machine are serialized, so two actions racing
 * for the same machine see each other's result (the second gets its 409).
 */
export class Lifecycle {
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(readonly opts: LifecycleOptions) {}

  get store(): Store {
    return this.opts.store;
  }

  get logger(): Logger {
    return this.opts.logger;
  }

  machine(id: string): Machine | undefined {
    return this.opts.store.get<Machine>(MACHINES, id);
  }

  /** Runs `fn` after every earlier lifecycle change of the machine finished (whatever their outcome). */
  exclusive<T>(machineId: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(machineId) ?? Promise.resolve()).then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(machineId, tail);
    void tail.then(() => {
      if (this.queues.get(machineId) === tail) this.queues.delete(machineId);
    });
    return run;
  }

  /**
   * Moves `m` by `trigger` (an illegal one throws ConflictError → 409), applying `change` too, and
   * records the event with its cause and reason. `stateReason` keeps the reason of the last transition.
   */
  async fire(m: Machine, trigger: Trigger, cause: EventCause, opts: { reason?: string; change?: Partial<Machine> } = {}): Promise<Machine> {
    const to = transition(m, trigger);
    const now = new Date().toISOString();
    const next: Machine = { ...m, ...opts.change, state: to, stateChangedAt: now, updatedAt: now };
    if (opts.reason) next.stateReason = opts.reason.slice(0, 1024);
    else delete next.stateReason;
    await commitMachine(this.opts, m, next, { from: m.state, to, cause, ...(opts.reason ? { reason: next.stateReason } : {}) }, this.opts.eventsPerMachine ?? DEFAULT_EVENTS_PER_MACHINE);
    return next;
  }

  /** Writes a change that is not a transition (addresses, OS facts). */
  async update(m: Machine, change: Partial<Machine>): Promise<Machine> {
    const next: Machine = { ...m, ...change, updatedAt: new Date().toISOString() };
    await commitMachine(this.opts, m, next);
    return next;
  }
}
