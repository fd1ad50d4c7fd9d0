import { EVENTS } from '../agents/collections.js';
import { inScope, type Scope } from '../auth/scope.js';
import { MACHINES } from '../machines/resources.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { Doc, Store } from '../store/types.js';
import { InvalidError } from '../../shared/errors/domain-errors.js';
import type { EventRecord } from '../../shared/api/events.js';

/** One stored record of the event stream (shared/api/events.ts describes what the API shows). */
export type EventDoc = Doc & Omit<EventRecord, 'id'>;

export interface EventQuery {
  /** `machine/NAME`, `site/NAME`, `agent/ID` …: records about that object. */
  object?: string;
  kind?: string;
  /** Only records received at or after this time (ms since the epoch). */
  sinceMs?: number;
  /** Only records after this cursor (from a previous answer's `next`): a watch. */
  after?: string;
  limit: number;
  scope: Scope;
}

export interface EventPage {
  items: EventDoc[];
  /** How many records matched (before the limit). */
  total: number;
  /** The cursor to ask `after` next time (the last record returned, or where the stream is now). */
  next: string;
}

const received = (e: EventDoc) => String(e.receivedAt ?? e.at);
export const cursorOf = (e: EventDoc) => `${received(e)}~${e.id}`;
const byCursor = (a: EventDoc, b: EventDoc) => (cursorOf(a) < cursorOf(b) ? -1 : cursorOf(a) > cursorOf(b) ? 1 : 0);

/** Whether an agent event's data names the machine (its id or one of its MACs). */
function aboutMachine(e: EventDoc, machine: { id: string; macs?: string[] }): boolean {
  const d = e.data as Record<string, unknown> | null | undefined;
  if (!d || typeof d !== 'object') return false;
  if (d.machineId === machine.id || d.machine === machine.id) return true;
  return typeof d.mac === 'string' && (machine.macs ?? []).includes(d.mac.toLowerCase());
}

function objectMatcher(store: Store, object: string): (e: EventDoc) => boolean {
  const m = /^([a-z-]+)\/(.+)$/.exec(object);
  if (!m) throw new InvalidError(`object "${object}" is not KIND/NAME, e.g. machine/m1`, [{ path: 'object', message: 'expected KIND/NAME' }]);
  const [, noun, name] = m as unknown as [string, string, string];
  const machine = noun === 'machine' ? (store.findUnique<Doc & { macs?: string[] }>(MACHINES, 'name', name) ?? store.get<Doc & { macs?: string[] }>(MACHINES, name)) : undefined;
  return (e) =>
    (e.objects ?? []).includes(object) ||
    (machine !== undefined && (e.objects ?? []).includes(`machine/${String(machine.name)}`)) ||
    (machine !== undefined && e.agent !== undefined && aboutMachine(e, machine)) ||
    (noun === 'agent' && e.agent === name);
}

/** The records matching the query, oldest first: with `after`, the first `limit` after it; else the newest `limit`. */
export function queryEvents(store: Store, q: EventQuery): EventPage {
  const about = q.object ? objectMatcher(store, q.object) : () => true;
  const all = store.list<EventDoc>(EVENTS).items;
  const matched = all
    .filter((e) => inScope(q.scope, e.site) && (!q.kind || e.kind === q.kind) && (q.sinceMs === undefined || Date.parse(received(e)) >= q.sinceMs) && (!q.after || cursorOf(e) > q.after) && about(e))
    .sort(byCursor);
  const items = q.after ? matched.slice(0, q.limit) : matched.slice(Math.max(0, matched.length - q.limit));
  const newest = all.reduce<string>((n, e) => (cursorOf(e) > n ? cursorOf(e) : n), '');
  const last = items.at(-1);
  return { items, total: matched.length, next: last ? cursorOf(last) : q.after && q.after > newest ? q.after : newest };
}

/**
 * A watch: the records after `q.after`, waiting up to `waitMs` for the first one (woken by writes to the
 * event stream). Returns an empty page at the timeout or when `signal` aborts (the client went away).
 */
export async function watchEvents(store: Store, changes: ChangeFeed, q: EventQuery, waitMs: number, signal?: AbortSignal): Promise<EventPage> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const page = queryEvents(store, q);
    if (page.items.length > 0 || Date.now() >= deadline || signal?.aborted) return page;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        off();
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, deadline - Date.now());
      const off = changes.on((c) => {
        if (c.collection === EVENTS && c.type === 'put') done();
      });
      signal?.addEventListener('abort', done);
    });
  }
}
