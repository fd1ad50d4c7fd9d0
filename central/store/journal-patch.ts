import type { CollectionName, Doc } from './types.js';

/**
 * A journal op that changes a document the snapshot or an earlier journal record already holds: only its
 * top-level fields that changed (`set`), were removed (`unset`), or arrays that grew at the end
 * (`append`: the items after the first `from`, e.g. a task's history). The file store writes one for a
 * put over an existing document of a collection declared `patches` (CollectionSpec): writers of such a
 * collection never change a stored document or its nested values in place (they copy what they change),
 * so a changed field is found by identity.
 *
 * Replaying a patch is idempotent, as a whole-document put is: `set` and `unset` are assignments, and an
 * append keeps the first `from` items before adding its own, so a record replayed over a state that
 * already holds it (a snapshot taken while its batch was being written) ends where it ended.
 */
export interface PatchOp {
  type: 'patch';
  collection: CollectionName;
  id: string;
  set?: Record<string, unknown>;
  unset?: string[];
  append?: Record<string, { from: number; items: unknown[] }>;
}

/** The patch from `prev` to `next` (same id). Never much larger than the whole document, when every field changed. */
export function patchOf(collection: CollectionName, prev: Doc, next: Doc): PatchOp {
  let set: Record<string, unknown> | undefined;
  let unset: string[] | undefined;
  let append: PatchOp['append'];
  for (const k of Object.keys(next)) {
    const v = next[k];
    const p = prev[k];
    if (v === p) continue;
    // JSON drops an undefined field: as a put would, it leaves the document without it.
    if (v === undefined) (unset ??= []).push(k);
    else if (Array.isArray(v) && Array.isArray(p) && v.length > p.length && p.every((x, i) => x === v[i])) (append ??= {})[k] = { from: p.length, items: v.slice(p.length) };
    else (set ??= {})[k] = v;
  }
  for (const k of Object.keys(prev)) {
    if (prev[k] !== undefined && !(k in next)) (unset ??= []).push(k);
  }
  return { type: 'patch', collection, id: next.id, ...(set ? { set } : {}), ...(unset ? { unset } : {}), ...(append ? { append } : {}) };
}

/**
 * The document `base` with the patch applied (a new object). Throws when an append's base array is
 * shorter than the patch's `from` or not an array: a journal that does not fit its snapshot.
 */
export function applyPatch(base: Doc, op: PatchOp): Doc {
  const doc: Doc = { ...base };
  if (op.set) for (const [k, v] of Object.entries(op.set)) assign(doc, k, v);
  if (op.unset) for (const k of op.unset) delete doc[k];
  if (op.append) {
    for (const [k, { from, items }] of Object.entries(op.append)) {
      const cur = base[k];
      if (!Array.isArray(cur) || cur.length < from) throw new Error(`journal patch of ${op.collection}/${op.id} appends to ${k} after item ${from}, which the document does not have`);
      assign(doc, k, cur.length === from ? [...cur, ...items] : [...cur.slice(0, from), ...items]);
    }
  }
  return doc;
}

/** An own field, also one named `__proto__` (a document may carry any key a client sent). */
function assign(doc: Doc, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(doc, k, { value: v, writable: true, enumerable: true, configurable: true });
  else doc[k] = v;
}

/** Whether `v` is a well-formed patch op (the shape only; the values are the document's own). */
export function isPatchOp(v: unknown): v is PatchOp {
  const op = v as PatchOp | null;
  if (op?.type !== 'patch' || typeof op.collection !== 'string' || typeof op.id !== 'string') return false;
  const isObj = (o: unknown) => o === undefined || (typeof o === 'object' && o !== null && !Array.isArray(o));
  if (!isObj(op.set) || !isObj(op.append)) return false;
  if (op.unset !== undefined && !(Array.isArray(op.unset) && op.unset.every((k) => typeof k === 'string'))) return false;
  return Object.values(op.append ?? {}).every((a) => Number.isInteger(a?.from) && a.from >= 0 && Array.isArray(a.items));
}
