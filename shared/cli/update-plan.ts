/**
 * How `underlay <noun> update` turns its flags into one PATCH without dropping data:
 * - `--param k=v` merges into the stored params and `--unset-param k` removes one (sent as
 *   `application/merge-patch+json`, so the central merges against the stored, still sealed, values);
 *   `--replace-params JSON` sets the whole map (a plain PATCH);
 * - `--add-mac` / `--remove-mac` change the stored list (read, changed, written back with If-Match, so a
 *   concurrent change is never overwritten); `--replace-macs a,b` sets the whole list.
 */
export interface UpdateOps {
  /** params to set (merged) */
  setParams?: Record<string, unknown>;
  unsetParams?: string[];
  /** the whole params map (explicit replace) */
  replaceParams?: Record<string, unknown>;
  /** list field → values to add / remove (merged into the stored list) */
  add?: Record<string, string[]>;
  remove?: Record<string, string[]>;
}

export interface PatchPlan {
  body: Record<string, unknown>;
  contentType: 'application/json' | 'application/merge-patch+json';
  /** whether the stored document must be read first (list edits, objects replaced inside a merge patch) */
  needsCurrent: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `next` as a merge patch that replaces `old` whole: keys `old` has and `next` lacks become null, at every level. */
export function asReplacement(old: unknown, next: unknown): unknown {
  if (!isObject(next) || !isObject(old)) return next;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(old)) if (!(k in next)) out[k] = null;
  for (const [k, v] of Object.entries(next)) out[k] = asReplacement(old[k], v);
  return out;
}

export function planUpdate(fields: Record<string, unknown>, ops: UpdateOps): PatchPlan {
  const merging = !!(ops.setParams && Object.keys(ops.setParams).length) || !!ops.unsetParams?.length;
  if (ops.replaceParams && merging) throw new Error('--replace-params sets the whole map: it does not go with --param or --unset-param');
  const body: Record<string, unknown> = { ...fields };
  if (ops.replaceParams) body.params = { ...ops.replaceParams };
  else if (merging) body.params = { ...ops.setParams, ...Object.fromEntries((ops.unsetParams ?? []).map((k) => [k, null])) };
  const listEdits = Object.keys({ ...ops.add, ...ops.remove }).length > 0;
  const objectsInMerge = merging && Object.entries(body).some(([k, v]) => k !== 'params' && isObject(v));
  return { body, contentType: merging ? 'application/merge-patch+json' : 'application/json', needsCurrent: listEdits || objectsInMerge };
}

/** Completes a plan against the stored document: list edits applied, objects made whole replacements in a merge patch. */
export function resolvePlan(plan: PatchPlan, ops: UpdateOps, current: Record<string, unknown>): Record<string, unknown> {
  const body = { ...plan.body };
  for (const field of new Set([...Object.keys(ops.add ?? {}), ...Object.keys(ops.remove ?? {})])) {
    if (field in body) throw new Error(`the whole ${field} list and an edit of it do not go together`);
    const have = Array.isArray(current[field]) ? (current[field] as string[]) : [];
    const norm = (s: string) => s.toLowerCase();
    const drop = new Set((ops.remove?.[field] ?? []).map(norm));
    const missing = [...drop].filter((d) => !have.some((h) => norm(h) === d));
    if (missing.length) throw new Error(`${field} has no ${missing.join(', ')} (it has ${have.join(', ') || 'none'})`);
    const kept = have.filter((h) => !drop.has(norm(h)));
    for (const a of ops.add?.[field] ?? []) if (!kept.some((h) => norm(h) === norm(a))) kept.push(a);
    body[field] = kept;
  }
  if (plan.contentType === 'application/merge-patch+json') {
    for (const [k, v] of Object.entries(body)) if (k !== 'params' && isObject(v)) body[k] = asReplacement(current[k], v);
  }
  return body;
}
