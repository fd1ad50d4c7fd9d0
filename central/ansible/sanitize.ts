/**
 * Ansible group names: `[A-Za-z_][A-Za-z0-9_]*`. Ours are lower-case; anything else becomes `_`
 * (runs collapsed), accented letters are transliterated (é → e, ß → ss), other non-ASCII is dropped, a
 * leading digit gets a `_` in front. Distinct inputs that land on the same name are made unique
 * deterministically (see `GroupNamer`).
 */

const TRANSLIT: Record<string, string> = {
  ß: 'ss',
  æ: 'ae',
  Æ: 'ae',
  œ: 'oe',
  Œ: 'oe',
  ø: 'o',
  Ø: 'o',
  đ: 'd',
  Đ: 'd',
  ð: 'd',
  Ð: 'd',
  ł: 'l',
  Ł: 'l',
  þ: 'th',
  Þ: 'th',
  ı: 'i',
};

/** Slug of one name part (no prefix handling): lower-case `[a-z0-9_]`, no leading/trailing `_`, runs collapsed. May be empty. */
export function slugPart(raw: string): string {
  let s = '';
  for (const ch of raw.normalize('NFKD')) {
    const code = ch.charCodeAt(0);
    if (code < 128) {
      s += /[A-Za-z0-9]/.test(ch) ? ch.toLowerCase() : '_';
    } else if (/\p{M}/u.test(ch)) {
      // combining mark left by NFKD (the accent of é): drop it
    } else if (TRANSLIT[ch] !== undefined) {
      s += TRANSLIT[ch];
    }
    // any other non-ASCII character is dropped
  }
  return s.replace(/_+/g, '_').replace(/^_|_$/g, '');
}

/**
 * A valid Ansible group name from a prefix and a raw value, e.g. (`site_`, `DC 1`) → `site_dc_1`,
 * (``, `10G`) → `_10g`. An empty slug becomes `_`-prefixed `empty`.
 */
export function groupName(prefix: string, raw: string): string {
  const part = slugPart(raw) || 'empty';
  const p = prefix === '' ? '' : slugPart(prefix) + '_';
  const name = (p === '_' ? '' : p) + part;
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

/** The global prefix as given (`?prefix=` or the central default), normalised: `ul` and `ul_` both mean `ul_`. */
export function normalisePrefix(prefix: string | undefined): string {
  if (!prefix) return '';
  const s = slugPart(prefix);
  if (!s) return '';
  return (/^[0-9]/.test(s) ? `_${s}` : s) + '_';
}

/** Names that are never given to a generated group. */
export const RESERVED_GROUPS = new Set(['all', 'ungrouped', '_meta']);

/**
 * Assigns final names to (key → wanted name) pairs so that distinct keys never share a name.
 * Deterministic for a given set of keys, whatever order they were added in:
 *  1. a name wanted by one key only (and not reserved) is kept;
 *  2. in a clash, a key whose raw text already *is* the wanted name wins (`dc_1` beats `dc-1`), else
 *     the smallest key (code-point order) wins;
 *  3. the others, in key order, get `<name>_2`, `<name>_3`, … — the first suffix no other group uses.
 */
export class GroupNamer {
  private readonly wanted = new Map<string, { name: string; exact: boolean }>();

  /** `key` identifies the group (kind + raw value); `exact` marks that the raw value equals the wanted name. */
  add(key: string, name: string, exact = false): void {
    if (!this.wanted.has(key)) this.wanted.set(key, { name, exact });
  }

  resolve(): Map<string, string> {
    const byName = new Map<string, string[]>();
    for (const [key, w] of this.wanted) {
      const list = byName.get(w.name);
      if (list) list.push(key);
      else byName.set(w.name, [key]);
    }
    const out = new Map<string, string>();
    const used = new Set<string>(RESERVED_GROUPS);
    const losers: string[] = [];
    // Pass 1: winners keep their names.
    for (const [name, keys] of byName) {
      if (RESERVED_GROUPS.has(name)) {
        losers.push(...keys);
        continue;
      }
      keys.sort(cmp);
      const exact = keys.find((k) => this.wanted.get(k)!.exact);
      const winner = exact ?? keys[0]!;
      out.set(winner, name);
      used.add(name);
      for (const k of keys) if (k !== winner) losers.push(k);
    }
    // Pass 2: the rest get the first free numeric suffix, in key order.
    losers.sort(cmp);
    for (const key of losers) {
      const base = this.wanted.get(key)!.name;
      let n = 2;
      while (used.has(`${base}_${n}`)) n++;
      const name = `${base}_${n}`;
      out.set(key, name);
      used.add(name);
    }
    return out;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
