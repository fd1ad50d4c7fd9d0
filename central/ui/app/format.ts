/** How long ago an ISO time was, for "last seen" columns. */
export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (Number.isNaN(s)) return iso;
  if (s < 0) return `in ${untilText(-s)}`;
  return `${untilText(s)} ago`;
}

function untilText(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Time until an ISO time ("in 29d"), or "expired". */
export function until(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const s = Math.round((Date.parse(iso) - now) / 1000);
  if (Number.isNaN(s)) return iso;
  return s <= 0 ? 'expired' : `in ${untilText(s)}`;
}

/** A MAC as typed by an operator (dashes, upper case) in the API's form; undefined if it is not a MAC. */
export function normalMac(text: string): string | undefined {
  const t = text.trim().toLowerCase().replace(/-/g, ':');
  return /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(t) ? t : undefined;
}

/** Query string from the set values only. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** UTF-8 text as base64 (run-script payloads). */
export function base64Utf8(text: string): string {
  let bin = '';
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin);
}

const SECRET_KEYS = /pass(word)?|secret|token|key|hash|credential/i;

/** A copy for display with values under secret-looking keys masked (the API already redacts sealed params). */
export function masked(v: unknown, depth = 0): unknown {
  if (depth > 20 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => masked(x, depth + 1));
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, SECRET_KEYS.test(k) && typeof x === 'string' ? '••••••' : masked(x, depth + 1)]));
}
