import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Api, ApiFailure, type ChangeNote, type Me } from './api.js';
import { Link } from './components.js';
import { SessionContext, type Session } from './hooks.js';
import { navigate, usePath } from './router.js';
import { BootView } from './views/boot.js';
import { MachineView } from './views/machine.js';
import { MachinesView } from './views/machines.js';
import { RunsView } from './views/runs.js';
import { ServicesView } from './views/services.js';
import { SitesView } from './views/sites.js';
import { TasksView } from './views/tasks.js';

const NAV = [
  ['/machines', 'Machines'],
  ['/sites', 'Sites'],
  ['/tasks', 'Tasks'],
  ['/runs', 'Runs'],
  ['/services', 'Services'],
  ['/boot', 'Boot'],
] as const;

function SignIn(props: { onSignedIn: (api: Api, me: Me) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const api = new Api(token.trim());
    try {
      const me = await api.get<Me>('/whoami');
      if (me.role === 'agent-join') throw new Error('an agent-join token cannot sign in');
      setToken('');
      props.onSignedIn(api, me);
    } catch (err) {
      setError(err instanceof ApiFailure && err.status === 401 ? 'That token is not valid (unknown, expired or revoked).' : (err as Error).message);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>Underlay</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <label>
          API token
          <input type="password" name="token" autoComplete="off" required value={token} onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <p class="muted small">The token is kept in this page’s memory only: reloading signs you out.</p>
        <button type="submit">Sign in</button>
        {error && <p class="error" role="alert">{error}</p>}
      </form>
    </main>
  );
}

function Route(props: { path: string }) {
  const p = props.path;
  const machine = /^\/machines\/([^/]+)$/.exec(p);
  if (machine) return <MachineView id={decodeURIComponent(machine[1])} />;
  if (p === '/sites') return <SitesView />;
  if (p === '/tasks') return <TasksView />;
  if (p === '/runs') return <RunsView />;
  if (p === '/services') return <ServicesView />;
  if (p === '/boot') return <BootView />;
  return <MachinesView />;
}

export function App() {
  const [signed, setSigned] = useState<{ api: Api; me: Me }>();
  const [live, setLive] = useState(false);
  const listeners = useRef(new Set<(c: ChangeNote) => void>());
  const path = usePath();
  useEffect(() => {
    if (!signed) return;
    const ctl = new AbortController();
    void signed.api.follow((c) => listeners.current.forEach((fn) => fn(c)), ctl.signal, setLive);
    return () => ctl.abort();
  }, [signed]);
  const session = useMemo<Session | null>(
    () => (signed ? { ...signed, onChange: (fn) => (listeners.current.add(fn), () => listeners.current.delete(fn)) } : null),
    [signed],
  );
  if (!session) return <SignIn onSignedIn={(api, me) => setSigned({ api, me })} />;
  const section = '/' + (path.split('/')[1] || 'machines');
  return (
    <SessionContext.Provider value={session}>
      <a class="skip" href="#main">Skip to content</a>
      <header>
        <span class="brand">Underlay</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([to, label]) => (
              <li key={to}>
                <Link to={to} class={section === to ? 'current' : undefined}>
                  <span aria-current={section === to ? 'page' : undefined}>{label}</span>
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          <span class={`dot ${live ? 'on' : 'off'}`} title={live ? 'live updates on' : 'live updates reconnecting'} aria-label={live ? 'live' : 'not live'} data-live={live ? 'on' : 'off'} />
          {session.me.name ?? session.me.id} · {session.me.role}
          {session.me.site ? ` · ${session.me.site}` : ''}
          <button type="button" onClick={() => (setSigned(undefined), navigate('/'))}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Route path={path} />
      </main>
    </SessionContext.Provider>
  );
}
