import { useState } from 'preact/hooks';
import { canAdmin, type Page } from '../api.js';
import { Link, Loading, Problem } from '../components.js';
import { ago, until } from '../format.js';
import { useApi, useSession } from '../hooks.js';

interface Site {
  id: string;
  name: string;
  description?: string;
}
interface Agent {
  id: string;
  site: string;
  name: string;
  agentVersion: string;
  connected: boolean;
  lastSeenAt?: string;
  certExpiresAt?: string;
  revokedAt?: string;
}

function JoinToken(props: { site: string }) {
  const { api } = useSession();
  const [token, setToken] = useState<string>();
  const [error, setError] = useState<string>();
  const create = async () => {
    setError(undefined);
    try {
      setToken((await api.post<{ token: string }>('/tokens', { role: 'agent-join', site: props.site, name: `join ${props.site}` })).token);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <div class="inline">
      <button type="button" data-action="join-token" onClick={create}>
        Create join token
      </button>
      {token && (
        <label class="secret">
          One-time join token for {props.site} (shown once: run <code>underlay agent join</code> with it)
          <input readOnly value={token} onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
        </label>
      )}
      <Problem error={error} />
    </div>
  );
}

export function SitesView() {
  const { me } = useSession();
  const sites = useApi<Page<Site>>('/sites?limit=1000');
  const agents = useApi<Page<Agent>>('/agents?limit=1000', ['agents']);
  return (
    <>
      <h1>Sites</h1>
      <Loading loading={sites.loading && !sites.data} />
      <Problem error={sites.error ?? agents.error} />
      {sites.data?.items.map((s) => {
        const mine = agents.data?.items.filter((a) => a.site.toLowerCase() === s.name.toLowerCase()) ?? [];
        return (
          <section class="card" key={s.id} aria-labelledby={`site-${s.id}`}>
            <h2 id={`site-${s.id}`}>
              {s.name} <Link to={`/machines?site=${encodeURIComponent(s.name)}`} class="small">machines</Link>
            </h2>
            {s.description && <p class="muted">{s.description}</p>}
            {mine.length === 0 ? (
              <p class="muted">No agent has joined this site.</p>
            ) : (
              <table>
                <caption class="sr-only">Agents of {s.name}</caption>
                <thead>
                  <tr>
                    <th scope="col">Agent</th>
                    <th scope="col">Status</th>
                    <th scope="col">Last seen</th>
                    <th scope="col">Version</th>
                    <th scope="col">Certificate expires</th>
                  </tr>
                </thead>
                <tbody>
                  {mine.map((a) => (
                    <tr key={a.id}>
                      <td>{a.name}</td>
                      <td>
                        <span class={`badge ${a.revokedAt ? 'state-failed' : a.connected ? 'state-online' : 'state-offline'}`}>{a.revokedAt ? 'revoked' : a.connected ? 'online' : 'offline'}</span>
                      </td>
                      <td title={a.lastSeenAt}>{a.connected ? 'now' : ago(a.lastSeenAt)}</td>
                      <td>{a.agentVersion}</td>
                      <td title={a.certExpiresAt}>{until(a.certExpiresAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {canAdmin(me) && <JoinToken site={s.name} />}
          </section>
        );
      })}
      {sites.data && sites.data.items.length === 0 && <p class="muted">No sites yet: create one with <code>underlay sites create NAME</code>.</p>}
    </>
  );
}
