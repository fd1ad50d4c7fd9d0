import { useState } from 'preact/hooks';
import type { Page } from '../api.js';
import { Link, Loading, Problem, StateBadge, Tree } from '../components.js';
import { ago } from '../format.js';
import { useApi } from '../hooks.js';

interface Run {
  id: string;
  workflow: string;
  machine: string;
  machineName: string;
  site: string;
  state: string;
  updatedAt?: string;
  createdAt?: string;
  [k: string]: unknown;
}

/** Workflow runs with their stage and step progress, live. */
export function RunsView() {
  const list = useApi<Page<Run>>('/runs?limit=50', ['runs']);
  const [open, setOpen] = useState<string>();
  const run = useApi<Run>(open ? `/runs/${encodeURIComponent(open)}` : undefined, ['runs'], (c) => c.id === open);
  return (
    <>
      <h1>Workflow runs</h1>
      <Problem error={list.error} />
      <Loading loading={list.loading && !list.data} />
      <table>
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">Workflow</th>
            <th scope="col">Machine</th>
            <th scope="col">State</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {list.data?.items.map((r) => (
            <tr key={r.id}>
              <td>
                <button type="button" class="linkish mono" aria-expanded={open === r.id} onClick={() => setOpen(open === r.id ? undefined : r.id)}>
                  {r.id}
                </button>
              </td>
              <td>{r.workflow}</td>
              <td>
                <Link to={`/machines/${encodeURIComponent(r.machine)}`}>{r.machineName}</Link>
              </td>
              <td>
                <StateBadge state={r.state} />
              </td>
              <td>{ago(r.updatedAt ?? r.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {open && run.data && (
        <section class="card" aria-label={`Run ${open}`}>
          <Tree value={run.data} />
        </section>
      )}
    </>
  );
}
