import type { ComponentChildren } from 'preact';
import { BASE, onLink } from './router.js';

export function Link(props: { to: string; children: ComponentChildren; class?: string }) {
  return (
    <a href={`${BASE}${props.to}`} onClick={onLink} class={props.class}>
      {props.children}
    </a>
  );
}

export function StateBadge(props: { state?: string }) {
  const s = props.state ?? 'unknown';
  return <span class={`badge state-${s}`}>{s}</span>;
}

export function Problem(props: { error?: string }) {
  return props.error ? (
    <p class="error" role="alert">
      {props.error}
    </p>
  ) : null;
}

export function Loading(props: { loading: boolean }) {
  return props.loading ? <p class="muted" aria-live="polite">Loading…</p> : null;
}

/** A key/value list of a JSON object, nested objects as their own lists. */
export function Tree(props: { value: unknown; depth?: number }) {
  const v = props.value;
  const depth = props.depth ?? 0;
  if (v === null || v === undefined) return <span class="muted">—</span>;
  if (typeof v !== 'object') return <span>{String(v)}</span>;
  if (depth > 6) return <code>{JSON.stringify(v)}</code>;
  const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) return <span class="muted">{Array.isArray(v) ? '[]' : '{}'}</span>;
  return (
    <dl class="tree">
      {entries.map(([k, x]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>
            <Tree value={x} depth={depth + 1} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

export function Section(props: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section aria-labelledby={props.id ? `${props.id}-h` : undefined} class="card">
      <h2 id={props.id ? `${props.id}-h` : undefined}>{props.title}</h2>
      {props.children}
    </section>
  );
}
