import type { Page } from '../api.js';
import { Loading, Problem, StateBadge } from '../components.js';
import { useApi } from '../hooks.js';

interface Member {
  id: string;
  machine?: string;
  address: string;
  port: number;
  status: string;
  tags?: string[];
}
interface Service {
  name: string;
  members: Member[];
}

/** Services with their members' health. */
export function ServicesView() {
  const list = useApi<Page<Service> | Service[]>('/services');
  const items = Array.isArray(list.data) ? list.data : (list.data?.items ?? []);
  return (
    <>
      <h1>Services</h1>
      <Problem error={list.error} />
      <Loading loading={list.loading && !list.data} />
      {items.length === 0 && list.data && <p class="muted">No services registered.</p>}
      {items.map((s) => (
        <section class="card" key={s.name} aria-labelledby={`svc-${s.name}`}>
          <h2 id={`svc-${s.name}`}>
            {s.name} <span class="muted small">{s.members.filter((m) => m.status === 'passing').length}/{s.members.length} passing</span>
          </h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Member</th>
                <th scope="col">Machine</th>
                <th scope="col">Address</th>
                <th scope="col">Health</th>
                <th scope="col">Tags</th>
              </tr>
            </thead>
            <tbody>
              {s.members.map((m) => (
                <tr key={m.id}>
                  <td class="mono">{m.id}</td>
                  <td>{m.machine ?? ''}</td>
                  <td class="mono">
                    {m.address}:{m.port}
                  </td>
                  <td>
                    <StateBadge state={m.status} />
                  </td>
                  <td>{(m.tags ?? []).join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </>
  );
}
