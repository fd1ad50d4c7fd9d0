import type { Logger } from '../../shared/log/logger.js';
import { parseDuration } from '../../shared/util/duration.js';
import { EVENTS } from '../agents/collections.js';
import { TASKS } from './collection.js';
import type { Doc, Store } from '../store/types.js';
import { TERMINAL, type TaskDoc } from './service.js';

/**
 * How long the central keeps finished tasks (succeeded, failed, rejected, cancelled, expired) and agent
 * events. Both are kept while younger than `maxAgeMs` and at most `maxCount` of each (the newest);
 * tasks still queued or in flight are never pruned, whatever their age.
 */
export interface RetentionPolicy {
  maxAgeMs: number;
  maxCount: number;
}

export const DEFAULT_RETENTION = { age: '7d', max: '100000' };

/** Parses the operator's settings (CLI flags / environment) with clear errors. */
export function parseRetention(age: string, max: string): RetentionPolicy {
  const maxAgeMs = parseDuration(age);
  if (maxAgeMs < 60_000) throw new Error(`task retention "${age}" is shorter than a minute`);
  if (!/^\d+$/.test(max.trim()) || Number(max) < 1) throw new Error(`task retention count "${max}" is not a positive whole number`);
  return { maxAgeMs, maxCount: Number(max) };
}

/** Ids of the documents past the policy: older than maxAgeMs, or beyond the newest maxCount. */
function pastPolicy(docs: { id: string; at: number }[], policy: RetentionPolicy, now: number): string[] {
  docs.sort((a, b) => b.at - a.at); // newest first
  return docs.filter((d, i) => i >= policy.maxCount || !(now - d.at < policy.maxAgeMs)).map((d) => d.id);
}

/** Which finished tasks and events the policy drops now. Pure (reads the store only). */
export function prunable(store: Store, policy: RetentionPolicy, now = Date.now()): { tasks: string[]; events: string[] } {
  const tasks = store
    .list<TaskDoc>(TASKS)
    .items.filter((t) => TERMINAL.has(t.state))
    .map((t) => ({ id: t.id, at: Date.parse(t.updatedAt) }));
  const events = store.list<Doc & { receivedAt?: string; at?: string }>(EVENTS).items.map((e) => ({ id: e.id, at: Date.parse(String(e.receivedAt ?? e.at)) }));
  return { tasks: pastPolicy(tasks, policy, now), events: pastPolicy(events, policy, now) };
}

/**
 * Deletes what the policy drops, in commits of at most `batchSize` deletes (each one durable write), so
 * a first prune of a large backlog does not hold the event loop or the journal for long.
 */
export async function prune(store: Store, policy: RetentionPolicy, now = Date.now(), batchSize = 1000): Promise<{ tasks: number; events: number }> {
  const { tasks, events } = prunable(store, policy, now);
  const ops = [...tasks.map((id) => ({ type: 'delete' as const, collection: TASKS, id })), ...events.map((id) => ({ type: 'delete' as const, collection: EVENTS, id }))];
  for (let i = 0; i < ops.length; i += batchSize) {
    await store.commit(ops.slice(i, i + batchSize));
    await new Promise((r) => setImmediate(r)); // let requests in between batches
  }
  return { tasks: tasks.length, events: events.length };
}

/** Prunes on a timer (first run soon after start); stop() waits for a run in progress. */
export class RetentionPruner {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly policy: RetentionPolicy,
    private readonly logger: Logger,
    private readonly everyMs = 60_000,
  ) {}

  start(): void {
    const tick = (delay: number) => {
      this.timer = setTimeout(() => {
        this.running = this.run().finally(() => {
          this.running = null;
          if (this.timer) tick(this.everyMs);
        });
      }, delay);
      this.timer.unref();
    };
    tick(Math.min(this.everyMs, 5_000));
  }

  private async run(): Promise<void> {
    try {
      // With central replicas on one database, one of them prunes at a time.
      const n = await this.store.exclusive('task-retention', () => prune(this.store, this.policy));
      if (n && n.tasks + n.events > 0) this.logger.info({ ...n, maxAgeMs: this.policy.maxAgeMs, maxCount: this.policy.maxCount }, 'pruned finished tasks and events');
    } catch (e) {
      this.logger.error({ err: e }, 'pruning finished tasks failed; will retry');
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
