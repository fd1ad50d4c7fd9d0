import { useEffect, useState } from 'preact/hooks';
import type { Page } from '../api.js';
import { Link, Loading, Problem, StateBadge } from '../components.js';
import { normalMac, query } from '../format.js';
import { useApi } from '../hooks.js';
import { navigate } from '../router.js';

export interface Machine {
  id: string;
  name: string;
  site: string;
  rack?: string;
  macs: string[];
  profiles: string[];
  bootenv: string;
  state?: string;
  address?: string;
  addresses?: { address: string }[];
  power?: { state: string; readAt: string };
  updatedAt?: string;
}

export const PAGE_SIZE = 100;
const STATES = ['discovered', 'ready', 'deploying', 'deployed', 'releasing', 'rescue', 'failed'];

type Filters = { site: string; state: string; profile: string; text: string; offset: string };

function readFilters(): Filters {
  const q = new URLSearchParams(location.search);
  return { site: q.get('site') ?? '', state: q.get('state') ?? '', profile: q.get('profile') ?? '', text: q.get('q') ?? '', offset: q.get('offset') ?? '0' };
}

/**
 * Machines, a page of 100 at a time (10,000 machines cost one page request and 100 rows), filtered by
 * the server: site, state, profile, and the text (`?q=`: part of a name, id, MAC, rack or address; a whole
 * MAC in any notation is matched exactly).
 */
export function MachinesView() {
  const [f, setF] = useState(readFilters);
  useEffect(() => {
    const on = () => setF(readFilters());
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  const set = (patch: Partial<Filters>) => {
    const next: Filters = { ...f, offset: '0', ...patch };
    setF(next);
    history.replaceState(null, '', `/ui/machines${query({ site: next.site, state: next.state, profile: next.profile, q: next.text, offset: next.offset === '0' ? '' : next.offset })}`);
  };
  const mac = normalMac(f.text);
  const offset = Number(f.offset) || 0;
  const text = f.text.trim();
  const list = useApi<Page<Machine>>(`/machines${query({ site: f.site, state: f.state, profile: f.profile, mac, q: mac ? '' : text, limit: PAGE_SIZE, offset })}`, ['machines']);
  const sites = useApi<Page<{ name: string }>>('/sites?limit=1000');
  const profiles = useApi<Page<{ name: string }>>('/profiles?limit=1000');
  const rows = list.data?.items ?? [];
  const total = list.data?.total ?? 0;
  return (
    <>
      <h1>Machines</h1>
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search
          <input type="search" name="q" placeholder="MAC, name or id" value={f.text} onInput={(e) => set({ text: (e.currentTarget as HTMLInputElement).value })} />
        </label>
        <label>
          Site
          <select name="site" value={f.site} onChange={(e) => set({ site: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="">all</option>
            {sites.data?.items.map((s) => <option key={s.name} value={s.name}>{s.name}</option>)}
          </select>
        </label>
        <label>
          State
          <select name="state" value={f.state} onChange={(e) => set({ state: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="">all</option>
            {STATES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>
          Profile
          <select name="profile" value={f.profile} onChange={(e) => set({ profile: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="">all</option>
            {profiles.data?.items.map((p) => <option key={p.name} value={p.name}>{p.name}</option>)}
          </select>
        </label>
      </form>
      <Problem error={list.error} />
      <Loading loading={list.loading && !list.data} />
      <table class="machines" aria-describedby="machines-count">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">State</th>
            <th scope="col">Site</th>
            <th scope="col">MAC</th>
            <th scope="col">Address</th>
            <th scope="col">Profiles</th>
            <th scope="col">Power</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((m) => (
            <tr key={m.id}>
              <td>
                <Link to={`/machines/${encodeURIComponent(m.id)}`}>{m.name}</Link>
              </td>
              <td>
                <StateBadge state={m.state} />
              </td>
              <td>{m.site}</td>
              <td class="mono">{m.macs.join(', ')}</td>
              <td class="mono">{m.address ?? m.addresses?.[0]?.address ?? ''}</td>
              <td>{m.profiles.join(', ')}</td>
              <td>{m.power?.state ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <nav class="pager" aria-label="Pages">
        <span id="machines-count" aria-live="polite">
          {total === 0 ? 'No machines' : `${offset + 1}–${Math.min(offset + PAGE_SIZE, total)} of ${total}`}
        </span>
        <button type="button" disabled={offset === 0} onClick={() => set({ offset: String(Math.max(0, offset - PAGE_SIZE)) })}>
          Previous
        </button>
        <button type="button" disabled={offset + PAGE_SIZE >= total} onClick={() => set({ offset: String(offset + PAGE_SIZE) })}>
          Next
        </button>
      </nav>
    </>
  );
}

export function goToMachine(id: string): void {
  navigate(`/machines/${encodeURIComponent(id)}`);
}
