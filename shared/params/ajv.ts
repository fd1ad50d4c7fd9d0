import { Ajv, type ErrorObject, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS; under NodeNext its default export arrives as `.default` on module.exports.
const addFormats = addFormatsModule.default;

/** An ajv instance with standard formats; `allErrors` so messages list every problem at once. */
export function createAjv(opts: Options = {}): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false, ...opts });
  addFormats(ajv);
  return ajv;
}

/** One readable line per ajv error: `/path/to/field: must be string`. */
export function formatAjvErrors(errors: ErrorObject[] | null | undefined, limit = 5): string {
  if (!errors || errors.length === 0) return 'invalid';
  const lines = errors.slice(0, limit).map((e) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}`);
  if (errors.length > limit) lines.push(`… and ${errors.length - limit} more`);
  return lines.join('; ');
}
