import { retryStale } from '../store/stale-write.js';
import type { Store } from '../store/types.js';
import { AGENTS, type AgentDoc } from './collections.js';
import { retirePreviousCert } from './cert-renewal.js';

/** Tries of one last-seen write that keeps losing to other replicas' writes of the same agent (task creation bumps `nextSeq`). */
const ATTEMPTS = 10;

/**
 * Records that the agent was seen at `at` (and retires its previous certificate once it connected with
 * the new one: `connectedWith`). Last-seen only moves forward: the later of the stored time and `at` is
 * kept. With several replicas the agent's document is also written by the replica that creates its tasks,
 * so a write that lost to one (compare-and-set) is built again on the fresh document and retried, not
 * dropped. Resolves false when the agent no longer exists.
 */
export async function recordLastSeen(store: Store, agentId: string, at: string, connectedWith?: string): Promise<boolean> {
  return retryStale(async () => {
    const doc = store.get<AgentDoc>(AGENTS, agentId);
    if (!doc) return false;
    const next = retirePreviousCert(doc, connectedWith);
    const lastSeenAt = doc.lastSeenAt && doc.lastSeenAt > at ? doc.lastSeenAt : at;
    if (next === doc && doc.lastSeenAt === lastSeenAt) return true; // nothing to write
    await store.put(AGENTS, { ...next, lastSeenAt });
    return true;
  }, ATTEMPTS);
}
