import { isSealed } from '../secrets/seal.js';

/** Field names whose values are secrets wherever they appear (passwords, token hashes, private keys). */
const SECRET_FIELD = /pass(word|wd|phrase)?$|secret$|^hash$|tokenhash|private|credential/i;

export const MASK = '[masked]';

/**
 * A copy of a document fit for the audit log: secret params (by name, under `params`), sealed values and
 * fields named like secrets are replaced by MASK. Booleans stay (`secret: true` on a param definition).
 */
export function maskSecrets(value: unknown, secretParams: Set<string>, key = ''): unknown {
  if (isSealed(value)) return MASK;
  if (SECRET_FIELD.test(key) && value !== null && typeof value !== 'boolean') return MASK;
  if (Array.isArray(value)) return value.map((v) => maskSecrets(v, secretParams));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = key === 'params' && secretParams.has(k) ? MASK : maskSecrets(v, secretParams, k);
    }
    return out;
  }
  return value;
}
