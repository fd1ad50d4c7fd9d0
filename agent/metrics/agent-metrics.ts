import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ipToInt } from '../../shared/dhcp/ip.js';
import type { Subnet } from '../../shared/dhcp/config.js';
import type { ArtifactSync } from '../artifacts/sync.js';
import type { DhcpServer } from '../dhcp/server.js';
import { messageTypeName } from '../dhcp/options.js';
import type { LinkState } from '../link/link.js';
import type { AgentRuntime } from '../run.js';
import type { TftpServer } from '../tftp/index.js';

/** What the agent's metrics read at scrape time (the boot listeners exist only when the agent serves boots). */
export interface MetricSources {
  rt: Pick<AgentRuntime, 'outbox' | 'taskLog' | 'link'>;
  dhcp?: () => DhcpServer | undefined;
  subnets?: () => Subnet[];
  tftp?: () => TftpServer | undefined;
  artifacts?: () => ArtifactSync | undefined;
}

const LINK_STATES: LinkState[] = ['idle', 'connecting', 'handshaking', 'ready', 'backoff', 'stopped'];
const lower = (type: number | string) => (typeof type === 'number' ? (messageTypeName(type) ?? `type-${type}`) : type).toLowerCase();

/**
 * The agent's Prometheus metrics (served on --metrics-listen, never on the provisioning network by
 * default). The DHCP and TFTP servers keep plain counters of their own (their `stats()`); they are read
 * here when Prometheus scrapes, so the packet paths pay nothing for metrics. HTTP boot requests are
 * counted as they finish (`httpRequest`).
 */
export class AgentMetrics {
  readonly registry = new Registry();
  /** Link transitions into `ready` (connects); reconnects are connects after the first. */
  private connects = 0;

  private readonly httpRequests = new Counter({ name: 'underlay_agent_http_requests_total', help: 'HTTP boot requests by route pattern and status', labelNames: ['route', 'status'] as const, registers: [this.registry] });

  constructor(private readonly s: MetricSources) {
    collectDefaultMetrics({ register: this.registry, prefix: 'underlay_agent_' });
    s.rt.link.onState((st) => {
      if (st === 'ready') this.connects++;
    });
    this.dhcpMetrics();
    this.tftpMetrics();
    this.agentMetrics();
  }

  /** Counts one finished HTTP boot request (`route`: the route pattern, bounded). */
  httpRequest(route: string, status: number): void {
    this.httpRequests.inc({ route, status: String(status) });
  }

  private counter(name: string, help: string, labelNames: string[], read: (set: (labels: Record<string, string>, v: number) => void) => void): void {
    new Counter({
      name, help, labelNames, registers: [this.registry],
      collect() {
        this.reset();
        read((labels, v) => this.inc(labels, v));
      },
    });
  }

  private gauge(name: string, help: string, labelNames: string[], read: (set: (labels: Record<string, string>, v: number) => void) => void): void {
    new Gauge({
      name, help, labelNames, registers: [this.registry],
      collect() {
        this.reset();
        read((labels, v) => this.set(labels, v));
      },
    });
  }

  private dhcpMetrics(): void {
    const stats = () => this.s.dhcp?.()?.stats();
    this.counter('underlay_agent_dhcp_requests_total', 'DHCP requests by subnet and message type (discover, request, decline, release, inform), full mode', ['subnet', 'type'], (set) => {
      for (const [subnet, byType] of Object.entries(stats()?.bySubnet ?? {})) for (const [t, n] of Object.entries(byType)) set({ subnet, type: lower(Number(t)) }, n);
    });
    this.counter('underlay_agent_dhcp_received_total', 'DHCP requests received by message type, any subnet or none', ['type'], (set) => {
      for (const [t, n] of Object.entries(stats()?.byType ?? {})) set({ type: lower(t) }, n);
    });
    this.counter('underlay_agent_dhcp_replies_total', 'DHCP replies sent by message type (offer, ack, nak), any subnet or none (proxyDHCP)', ['type'], (set) => {
      for (const [t, n] of Object.entries(stats()?.sent ?? {})) set({ type: lower(t) }, n);
    });
    this.counter('underlay_agent_dhcp_subnet_replies_total', 'DHCP replies by subnet and message type (offer, ack, nak), full mode', ['subnet', 'type'], (set) => {
      for (const [subnet, byType] of Object.entries(stats()?.repliesBySubnet ?? {})) for (const [t, n] of Object.entries(byType)) set({ subnet, type: lower(t) }, n);
    });
    this.counter('underlay_agent_dhcp_dropped_total', 'DHCP packets not answered: malformed, ignored (no subnet, not for us …), errors', ['reason'], (set) => {
      const st = stats();
      if (!st) return;
      set({ reason: 'malformed' }, st.malformed);
      set({ reason: 'ignored' }, st.ignored);
      set({ reason: 'error' }, st.errors);
    });
    this.gauge('underlay_agent_dhcp_pool_addresses', 'Addresses of each subnet\'s dynamic range', ['subnet'], (set) => {
      for (const sn of this.s.subnets?.() ?? []) set({ subnet: sn.cidr }, Math.max(0, ipToInt(sn.range.end) - ipToInt(sn.range.start) + 1));
    });
    this.gauge('underlay_agent_dhcp_leases', 'Leases by subnet and state (bound and declined: unexpired)', ['subnet', 'state'], (set) => {
      const dhcp = this.s.dhcp?.();
      if (!dhcp) return;
      const now = Date.now();
      const counts = new Map<string, number>();
      for (const sn of this.s.subnets?.() ?? []) for (const state of ['bound', 'declined']) counts.set(`${sn.cidr}|${state}`, 0);
      for (const l of dhcp.leases()) {
        if ((l.state === 'bound' || l.state === 'declined') && l.expiresAt > now) counts.set(`${l.subnet}|${l.state}`, (counts.get(`${l.subnet}|${l.state}`) ?? 0) + 1);
      }
      for (const [k, n] of counts) {
        const [subnet, state] = k.split('|') as [string, string];
        set({ subnet, state }, n);
      }
    });
  }

  private tftpMetrics(): void {
    const stats = () => this.s.tftp?.()?.stats();
    this.counter('underlay_agent_tftp_transfers_total', 'TFTP transfers by outcome (completed, error, refused)', ['outcome'], (set) => {
      const st = stats();
      if (!st) return;
      set({ outcome: 'completed' }, st.completed);
      set({ outcome: 'error' }, st.errors);
      set({ outcome: 'refused' }, st.refused);
    });
    const single: [kind: 'counter' | 'gauge', name: string, help: string, field: 'bytesSent' | 'retransmits' | 'timeouts' | 'active'][] = [
      ['counter', 'underlay_agent_tftp_bytes_sent_total', 'TFTP payload bytes acknowledged by clients', 'bytesSent'],
      ['counter', 'underlay_agent_tftp_retransmits_total', 'TFTP data packets sent again (lost or late acknowledgements)', 'retransmits'],
      ['counter', 'underlay_agent_tftp_timeouts_total', 'TFTP transfers that timed out', 'timeouts'],
      ['gauge', 'underlay_agent_tftp_active_transfers', 'TFTP transfers in progress', 'active'],
    ];
    for (const [kind, name, help, field] of single) {
      this[kind](name, help, [], (set) => {
        const st = stats();
        if (st) set({}, st[field]);
      });
    }
  }

  private agentMetrics(): void {
    const { outbox, taskLog, link } = this.s.rt;
    this.gauge('underlay_agent_tasks', 'Tasks this agent remembers (its task log) by kind and last state', ['kind', 'state'], (set) => {
      for (const [k, n] of taskLog.countsByKindAndState()) {
        const [kind, state] = k.split('|') as [string, string];
        set({ kind, state }, n);
      }
    });
    this.gauge('underlay_agent_outbox_records', 'Reports and events not yet acknowledged by the central', [], (set) => set({}, outbox.depth().records));
    this.gauge('underlay_agent_outbox_bytes', 'Bytes of reports and events not yet acknowledged', [], (set) => set({}, outbox.depth().bytes));
    this.gauge('underlay_agent_outbox_oldest_age_seconds', 'Age of the oldest unacknowledged report or event (0 when empty)', [], (set) => {
      const at = outbox.oldestAt();
      set({}, at ? Math.max(0, (Date.now() - Date.parse(at)) / 1000) : 0);
    });
    this.gauge('underlay_agent_link_up', '1 while the link to the central is ready', [], (set) => set({}, link.state === 'ready' ? 1 : 0));
    this.gauge('underlay_agent_link_state', 'The link state (1 for the current one)', ['state'], (set) => {
      for (const st of LINK_STATES) set({ state: st }, link.state === st ? 1 : 0);
    });
    this.counter('underlay_agent_link_connects_total', 'Times the link to the central became ready', [], (set) => set({}, this.connects));
    this.counter('underlay_agent_link_reconnects_total', 'Times the link became ready again after the first time', [], (set) => set({}, Math.max(0, this.connects - 1)));
    this.gauge('underlay_agent_artifacts', 'Artifacts of the desired state: wanted, present (pulled and verified)', ['state'], (set) => {
      const a = this.s.artifacts?.();
      if (!a) return;
      const st = a.status();
      set({ state: 'wanted' }, st.wanted);
      set({ state: 'present' }, st.present);
    });
    this.counter('underlay_agent_artifact_pulls_total', 'Artifact downloads from the central by result', ['result'], (set) => {
      const a = this.s.artifacts?.();
      if (!a) return;
      set({ result: 'ok' }, a.pulls.ok);
      set({ result: 'failed' }, a.pulls.failed);
    });
    this.counter('underlay_agent_artifact_bytes_pulled_total', 'Bytes of artifacts pulled and verified', [], (set) => {
      const a = this.s.artifacts?.();
      if (a) set({}, a.pulls.bytes);
    });
  }
}
