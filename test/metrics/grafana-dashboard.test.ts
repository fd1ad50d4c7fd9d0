import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../agent/metrics/agent-metrics.js';
import { memoryStore } from '../../central/all-collections.test-support.js';
import { Metrics } from '../../central/metrics/metrics.js';
import { registerFleetMetrics } from '../../central/monitoring/fleet-metrics.js';

/** docs/grafana/underlay.json is built from series the central and the agent really export (a renamed series fails here). */
describe('Grafana dashboard', () => {
  it('queries only series the central or the agent registers, and covers every family of issue 19', () => {
    const dash = JSON.parse(readFileSync(join(import.meta.dirname, '../../docs/grafana/underlay.json'), 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
    const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    const used = new Set(exprs.flatMap((e) => e.match(/underlay_[a-z_]+/g) ?? []).map((n) => n.replace(/_(bucket|count|sum)$/, '')));

    const central = new Metrics();
    const store = memoryStore();
    registerFleetMetrics(central.registry, store, store.changes, () => []);
    const agent = new AgentMetrics({ rt: { outbox: {} as never, taskLog: {} as never, link: { onState: () => () => undefined } as never } });
    const known = new Set([...central.registry.getMetricsAsArray(), ...agent.registry.getMetricsAsArray()].map((m) => (m as unknown as { name: string }).name));

    const unknown = [...used].filter((n) => !known.has(n));
    expect(unknown).toEqual([]);
    for (const family of ['underlay_agent_dhcp_requests_total', 'underlay_agent_dhcp_leases', 'underlay_agent_tftp_transfers_total', 'underlay_agent_tftp_bytes_sent_total', 'underlay_agent_tftp_retransmits_total', 'underlay_agent_http_requests_total', 'underlay_agent_tasks', 'underlay_agent_outbox_records', 'underlay_agent_outbox_oldest_age_seconds', 'underlay_agent_link_up', 'underlay_agent_link_reconnects_total', 'underlay_agent_artifacts', 'underlay_tasks', 'underlay_agents_connected', 'underlay_agent_joins_total', 'underlay_workflow_runs', 'underlay_store_commit_duration_seconds', 'underlay_machines']) {
      expect(used, family).toContain(family);
    }
  });
});
