import { useState } from 'preact/hooks';
import type { Page } from '../api.js';
import { Problem } from '../components.js';
import { base64Utf8 } from '../format.js';
import { useApi, useSession } from '../hooks.js';
import type { Machine } from './machines.js';
import { TaskDetail } from './tasks.js';

/** Runs an action and says what came of it (the API's message when it refused). */
function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [done, setDone] = useState<string>();
  const run = async (what: string, fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    setDone(undefined);
    try {
      await fn();
      setDone(what);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, done, run };
}

/**
 * The actions an operator or admin may take on a machine (the page shows none to a viewer; the API
 * refuses them anyway): run a script, deploy, release, power, start a workflow.
 */
export function MachineActions(props: { machine: Machine }) {
  const m = props.machine;
  const ref = `/machines/${encodeURIComponent(m.id)}`;
  const { api } = useSession();
  const a = useAction();
  const [script, setScript] = useState('hostname\nuname -r\n');
  const [task, setTask] = useState<string>();
  const [image, setImage] = useState('');
  const [config, setConfig] = useState('cloud-init');
  const [power, setPower] = useState('status');
  const [workflow, setWorkflow] = useState('');
  const images = useApi<Page<{ name: string }> | { name: string }[]>('/images');
  const workflows = useApi<Page<{ name: string }>>('/workflows?limit=1000');
  const imageItems = Array.isArray(images.data) ? images.data : (images.data?.items ?? []);
  return (
    <section class="card actions" aria-labelledby="actions-h">
      <h2 id="actions-h">Actions</h2>
      <form
        aria-label="Run a script"
        onSubmit={(e) => {
          e.preventDefault();
          void a.run('script queued', async () => setTask((await api.post<{ id: string }>('/tasks', { site: m.site, machine: m.id, kind: 'run-script', payload: { scriptB64: base64Utf8(script) } })).id));
        }}
      >
        <label>
          Script (run by the machine’s runner as root)
          <textarea name="script" rows={4} value={script} onInput={(e) => setScript((e.currentTarget as HTMLTextAreaElement).value)} />
        </label>
        <button type="submit" data-action="run-script" disabled={a.busy}>
          Run script
        </button>
      </form>
      {task && <TaskDetail id={task} />}
      <form
        aria-label="Deploy"
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void a.run('deploy started', () => api.post(`${ref}/deploy`, { image, config }));
        }}
      >
        <label>
          Image
          <select value={image} required onChange={(e) => setImage((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">choose…</option>
            {imageItems.map((i) => <option key={i.name}>{i.name}</option>)}
          </select>
        </label>
        <label>
          Config
          <select value={config} onChange={(e) => setConfig((e.currentTarget as HTMLSelectElement).value)}>
            <option>cloud-init</option>
            <option>ignition</option>
          </select>
        </label>
        <button type="submit" data-action="deploy" disabled={a.busy}>
          Deploy
        </button>
        <button type="button" data-action="release" disabled={a.busy} onClick={() => void a.run('release started', () => api.post(`${ref}/release`, {}))}>
          Release
        </button>
      </form>
      <form
        aria-label="Power"
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void a.run(`power ${power} queued`, () => api.post(`${ref}/power`, { action: power }));
        }}
      >
        <label>
          Power
          <select value={power} onChange={(e) => setPower((e.currentTarget as HTMLSelectElement).value)}>
            {['status', 'on', 'off', 'cycle', 'reset'].map((p) => <option key={p}>{p}</option>)}
          </select>
        </label>
        <button type="submit" data-action="power" disabled={a.busy}>
          Send
        </button>
      </form>
      <form
        aria-label="Start a workflow"
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void a.run('workflow started', () => api.post(`${ref}/workflow`, { workflow }));
        }}
      >
        <label>
          Workflow
          <select value={workflow} required onChange={(e) => setWorkflow((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">choose…</option>
            {workflows.data?.items.map((w) => <option key={w.name}>{w.name}</option>)}
          </select>
        </label>
        <button type="submit" data-action="workflow" disabled={a.busy}>
          Start
        </button>
      </form>
      <Problem error={a.error} />
      {a.done && <p class="ok" role="status">{a.done}</p>}
    </section>
  );
}
