import type { Page } from '../api.js';
import { canWrite } from '../api.js';
import { Link, Loading, Problem, Section, StateBadge, Tree } from '../components.js';
import { ago, masked } from '../format.js';
import { useApi, useSession } from '../hooks.js';
import { MachineActions } from './machine-actions.js';
import type { Machine } from './machines.js';
import { TasksView } from './tasks.js';

interface MachineDoc extends Machine {
  facts?: Record<string, unknown>;
  params?: Record<string, unknown>;
  reason?: string;
  bmc?: Record<string, unknown>;
  netboot?: boolean;
}
interface MachineEvent {
  at: string;
  from?: string;
  to?: string;
  state?: string;
  cause?: unknown;
  reason?: string;
  [k: string]: unknown;
}
interface Lease {
  mac: string;
  address: string;
  state?: string;
  expiresAt?: string;
  site?: string;
}

/** One machine: state and events, facts, leases, power, resolved params and rendered boot files (secrets masked), tasks with output, actions. */
export function MachineView(props: { id: string }) {
  const { me } = useSession();
  const ref = `/machines/${encodeURIComponent(props.id)}`;
  const m = useApi<MachineDoc>(ref, ['machines'], (c) => c.id === props.id);
  const events = useApi<Page<MachineEvent> | MachineEvent[]>(`${ref}/events`, ['machines'], (c) => c.id === props.id);
  const params = useApi<Record<string, unknown>>(`${ref}/params`);
  const bootFiles = useApi<{ bootenv: string | null; files: { path: string; text?: string; error?: string }[] }>(`${ref}/boot-files`, ['machines'], (c) => c.id === props.id);
  const mac = m.data?.macs[0];
  const leases = useApi<Page<Lease>>(mac ? `/leases?mac=${encodeURIComponent(mac)}` : undefined);
  if (!m.data) return (<><Loading loading={m.loading} /><Problem error={m.error} /></>);
  const d = m.data;
  const eventItems = Array.isArray(events.data) ? events.data : (events.data?.items ?? []);
  return (
    <>
      <p class="small">
        <Link to="/machines">← Machines</Link>
      </p>
      <h1>
        {d.name} <StateBadge state={d.state} />
      </h1>
      <dl class="summary">
        <div><dt>Site</dt><dd>{d.site}{d.rack ? ` / ${d.rack}` : ''}</dd></div>
        <div><dt>MAC</dt><dd class="mono">{d.macs.join(', ')}</dd></div>
        <div><dt>Address</dt><dd class="mono">{d.address ?? d.addresses?.map((a) => a.address).join(', ') ?? '—'}</dd></div>
        <div><dt>Boot environment</dt><dd>{d.bootenv}{d.netboot === false ? ' (boots from disk)' : ''}</dd></div>
        <div><dt>Profiles</dt><dd>{d.profiles.join(', ') || '—'}</dd></div>
        <div><dt>Power</dt><dd>{d.power ? `${d.power.state} (${ago(d.power.readAt)})` : 'no reading'}</dd></div>
        {d.reason && <div><dt>Reason</dt><dd class="error">{d.reason}</dd></div>}
      </dl>
      {canWrite(me) && <MachineActions machine={d} />}
      <div class="grid">
        <Section title="Facts" id="facts">
          {d.facts ? <Tree value={d.facts} /> : <p class="muted">No facts reported yet.</p>}
        </Section>
        <Section title="Lifecycle events" id="events">
          <Problem error={events.error} />
          <ol class="history">
            {eventItems.map((e, i) => (
              <li key={i}>
                <span title={e.at}>{ago(e.at)}</span> {e.from ? `${e.from} → ` : ''}
                {e.to ?? e.state ?? ''} {e.reason ? `— ${e.reason}` : ''} <span class="muted small">{typeof e.cause === 'object' ? JSON.stringify(e.cause) : String(e.cause ?? '')}</span>
              </li>
            ))}
          </ol>
        </Section>
        <Section title="Leases" id="leases">
          {leases.data?.items.length ? (
            <table>
              <thead><tr><th scope="col">Address</th><th scope="col">MAC</th><th scope="col">State</th><th scope="col">Expires</th></tr></thead>
              <tbody>
                {leases.data.items.map((l) => (
                  <tr key={l.mac + l.address}><td class="mono">{l.address}</td><td class="mono">{l.mac}</td><td>{l.state ?? ''}</td><td>{l.expiresAt ?? ''}</td></tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p class="muted">No lease.</p>
          )}
        </Section>
        <Section title="Boot params (resolved, secrets masked)" id="params">
          <Problem error={params.error} />
          {params.data && <Tree value={masked(params.data)} />}
        </Section>
      </div>
      <Section title="Boot files (rendered now, secrets masked)" id="bootfiles">
        <Problem error={bootFiles.error} />
        {bootFiles.data?.files.map((f) => (
          <details key={f.path}>
            <summary class="mono">
              {f.path}
              {f.error ? <span class="error"> — not served: {f.error}</span> : ''}
            </summary>
            {f.text !== undefined && <pre class="output">{f.text}</pre>}
          </details>
        ))}
      </Section>
      <section class="card">
        <TasksView machine={d.id} title="Tasks" />
      </section>
    </>
  );
}
