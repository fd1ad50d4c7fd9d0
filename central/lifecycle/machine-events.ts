import { MACHINES } from '../machines/resources.js';
import { randomUUID } from 'node:crypto';
import type { EventCause, MachineEvent, MachineState } from '../../shared/api/lifecycle.js';
import type { Machine } from '../../shared/api/resources.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { CollectionSpec, Store, WriteOp } from '../store/types.js';

/** Lifecycle transitions, one record each: the machine's history (`underlay machines events NAME`). */
export const MACHINE_EVENTS = 'machine-events';
export const MACHINE_EVENT_COLLECTIONS: CollectionSpec[] = [{ name: MACHINE_EVENTS, unique: [] }];

/** How many events are kept per machine (the newest); older ones are dropped in the same commit. */
export const DEFAULT_EVENTS_PER_MACHINE = 200;

/** A machine's events, oldest first. */
export function eventsOf(store: Store, machineId: string): MachineEvent[] {
  return store
    .list<MachineEvent & { [k: string]: unknown }>(MACHINE_EVENTS, { where: { machine: machineId } })
    .items.sort((a, b) => a.seq - b.seq);
}

export interface Transition {
  from: MachineState | null;
  to: MachineState;
  cause: EventCause;
  reason?: string;
}

/**
 * Writes a machine and, when its state changed, the event recording the change — one durable commit, so
 * a state is never without its event nor an event without its state (the store announces the machine).
 * Events beyond `keep` for the machine (the oldest) are deleted in the same commit.
 */
export async function commitMachine(
  deps: { store: Store; changes: ChangeFeed },
  before: Machine,
  next: Machine,
  transition?: Transition,
  keep = DEFAULT_EVENTS_PER_MACHINE,
): Promise<MachineEvent | undefined> {
  const ops: WriteOp[] = [{ type: 'put', collection: MACHINES, doc: next }];
  let event: MachineEvent | undefined;
  if (transition) {
    const existing = eventsOf(deps.store, next.id);
    const seq = (existing.at(-1)?.seq ?? 0) + 1;
    event = { id: randomUUID(), machine: next.id, site: next.site, seq, ...transition, ...(transition.reason ? { reason: transition.reason.slice(0, 1024) } : {}), at: next.updatedAt };
    ops.push({ type: 'put', collection: MACHINE_EVENTS, doc: event });
    const drop = existing.length + 1 - keep;
    for (const old of existing.slice(0, Math.max(0, drop))) ops.push({ type: 'delete', collection: MACHINE_EVENTS, id: old.id });
  }
  await deps.store.commit(ops);
  return event;
}

/** Drops a deleted machine's events. */
export async function deleteEventsOf(store: Store, machineId: string): Promise<void> {
  const ops = eventsOf(store, machineId).map((e) => ({ type: 'delete' as const, collection: MACHINE_EVENTS, id: e.id }));
  if (ops.length > 0) await store.commit(ops);
}
