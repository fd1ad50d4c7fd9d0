import { Counter, Gauge, type Registry } from 'prom-client';
import { AGENTS, type AgentDoc } from '../agents/collections.js';
import { MACHINES } from '../machines/resources.js';
import { RUNS } from '../runs/resources.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { Doc, Store } from '../store/types.js';
import { TASKS } from '../tasks/collection.js';

/** Counts documents of a collection by the values of some fields (`a|b` keys). */
function tally(store: Store, collection: string, key: (d: Doc) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of store.list(collection).items) out.set(key(d), (out.get(key(d)) ?? 0) + 1);
  return out;
}

/**
 * The fleet as Prometheus sees it (added to the central's /metrics): tasks by state, workflow runs by
 * state, machines by site and state, agents by site (joined and connected), joins. Gauges are counted
 * from the store when Prometheus scrapes (one pass over each collection), never on the write path.
 */
export function registerFleetMetrics(registry: Registry, store: Store, changes: ChangeFeed, connected: () => Iterable<{ site: string }>): () => void {
  const gauge = (name: string, help: string, labelNames: string[], read: (set: (labels: Record<string, string>, v: number) => void) => void) =>
    new Gauge({
      name, help, labelNames, registers: [registry],
      collect() {
        this.reset();
        read((l, v) => this.set(l, v));
      },
    });
  gauge('underlay_tasks', 'Tasks by kind and state (queued, delivered, accepted, running, succeeded, failed, rejected, cancelled, expired)', ['kind', 'state'], (set) => {
    for (const [k, n] of tally(store, TASKS, (d) => `${String(d.kind)}|${String(d.state)}`)) {
      const [kind, state] = k.split('|') as [string, string];
      set({ kind, state }, n);
    }
  });
  gauge('underlay_workflow_runs', 'Workflow runs by state', ['state'], (set) => {
    for (const [state, n] of tally(store, RUNS, (d) => String(d.state))) set({ state }, n);
  });
  gauge('underlay_machines', 'Machines by site and lifecycle state', ['site', 'state'], (set) => {
    for (const [k, n] of tally(store, MACHINES, (d) => `${String(d.site)}|${String(d.state)}`)) {
      const [site, state] = k.split('|') as [string, string];
      set({ site, state }, n);
    }
  });
  gauge('underlay_agents', 'Joined agents by site (revoked ones left out)', ['site'], (set) => {
    for (const [site, n] of tally(store, AGENTS, (d) => ((d as AgentDoc).revokedAt ? '' : String(d.site)))) if (site) set({ site }, n);
  });
  gauge('underlay_agents_connected', 'Agents holding a link to this central replica, by site', ['site'], (set) => {
    const bySite = new Map<string, number>();
    for (const a of store.list<AgentDoc>(AGENTS).items) if (!a.revokedAt) bySite.set(a.site, 0);
    for (const s of connected()) bySite.set(s.site, (bySite.get(s.site) ?? 0) + 1);
    for (const [site, n] of bySite) set({ site }, n);
  });
  const joins = new Counter({ name: 'underlay_agent_joins_total', help: 'Agents that joined (through this replica or another sharing the store) since this central started', labelNames: ['site'], registers: [registry] });
  return changes.on((c) => {
    if (c.collection === AGENTS && c.type === 'put' && !c.before) joins.inc({ site: String(c.doc?.site) });
  });
}
