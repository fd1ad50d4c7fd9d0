/** RFC 7386 JSON Merge Patch (`Content-Type: application/merge-patch+json`): objects merge, null removes, anything else replaces. */
export const MERGE_PATCH_TYPE = 'application/merge-patch+json';

export function isMergePatch(contentType: string | undefined): boolean {
  return /^application\/merge-patch\+json\b/i.test(contentType ?? '');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A sealed secret (`{ $sealed: … }`) is one value, never merged into. */
function isSealedValue(v: unknown): boolean {
  return isPlainObject(v) && '$sealed' in v;
}

export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = isPlainObject(target) && !isSealedValue(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/**
 * A merge patch turned into the field-replacing patch the resource's own merge takes: each object field
 * the patch names is merged into the stored one (the stored, still sealed, secrets untouched unless named);
 * top-level nulls and non-object values pass through (null removes the field, as in a plain PATCH).
 */
export function expandMergePatch(before: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(patch)) out[k] = isPlainObject(v) ? applyMergePatch(before[k], v) : v;
  return out;
}
