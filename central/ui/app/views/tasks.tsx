import { useState } from 'preact/hooks';
import type { Page } from '../api.js';
import { Link, Loading, Problem, StateBadge } from '../components.js';
import { ago, query } from '../format.js';
import { useApi } from '../hooks.js';

export interface Task {
  id: string;
  site: string;
  machine: string | null;
  kind: string;
  state: string;
  createdAt: string;
  updatedAt: string;
  output?: string;
  exitCode?: number;
  reason?: string;
  history: { state: string; at: string; reason?: string }[];
}

/** One task as it stands, following its changes live (output once the runner reports it). */
export function TaskDetail(props: { id: string }) {
  const t = useApi<Task>(`/tasks/${encodeURIComponent(props.id)}`, ['tasks'], (c) => c.id === props.id);
  if (!t.data) return <Problem error={t.error} />;
  const task = t.data;
  return (
    <div class="task" data-task={task.id} data-state={task.state} aria-live="polite">
      <p>
        <strong>{task.kind}</strong> <StateBadge state={task.state} /> <span class="mono small">{task.id}</span>
        {task.exitCode !== undefined && <span> exit {task.exitCode}</span>}
        {task.reason && <span class="error"> {task.reason}</span>}
      </p>
      <ol class="history">
        {task.history.map((h, i) => (
          <li key={i}>
            {h.state} <span class="muted" title={h.at}>{ago(h.at)}</span>
            {h.reason ? ` — ${h.reason}` : ''}
          </li>
        ))}
      </ol>
      {task.output !== undefined && (
        <pre class="output" aria-label="Task output">
          {task.output}
        </pre>
      )}
    </div>
  );
}

/** Tasks, newest first, filtered by the API (site, state, kind, machine), live. */
export function TasksView(props: { machine?: string; title?: string }) {
  const [state, setState] = useState('');
  const [kind, setKind] = useState('');
  const [open, setOpen] = useState<string>();
  const list = useApi<Page<Task>>(`/tasks${query({ machine: props.machine, state, kind, limit: 50 })}`, ['tasks']);
  return (
    <>
      {props.title ? <h2>{props.title}</h2> : <h1>Tasks</h1>}
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          State
          <select value={state} onChange={(e) => setState((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">all</option>
            {['queued', 'delivered', 'accepted', 'running', 'succeeded', 'failed', 'rejected', 'cancelled', 'expired'].map((s) => <option key={s}>{s}</option>)}
          </select>
        </label>
        <label>
          Kind
          <input value={kind} placeholder="run-script" onChange={(e) => setKind((e.currentTarget as HTMLInputElement).value.trim())} />
        </label>
      </form>
      <Problem error={list.error} />
      <Loading loading={list.loading && !list.data} />
      <table>
        <thead>
          <tr>
            <th scope="col">Task</th>
            <th scope="col">Kind</th>
            <th scope="col">State</th>
            <th scope="col">Site</th>
            <th scope="col">Machine</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {list.data?.items.map((t) => (
            <tr key={t.id} data-task-row={t.id}>
              <td>
                <button type="button" class="linkish mono" aria-expanded={open === t.id} onClick={() => setOpen(open === t.id ? undefined : t.id)}>
                  {t.id}
                </button>
              </td>
              <td>{t.kind}</td>
              <td>
                <StateBadge state={t.state} />
              </td>
              <td>{t.site}</td>
              <td>{t.machine ? <Link to={`/machines/${encodeURIComponent(t.machine)}`}>{t.machine}</Link> : ''}</td>
              <td title={t.updatedAt}>{ago(t.updatedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {open && <TaskDetail id={open} />}
    </>
  );
}
