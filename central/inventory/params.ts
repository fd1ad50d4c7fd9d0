import { Ajv } from 'ajv';
import { ParamDef, ParamDefCreate, ParamDefPatch, type ParamDef as ParamDefT } from '../../shared/api/resources.js';
import { ApiError } from '../api/api-error.js';
import { isSealed } from '../secrets/seal.js';
import type { ResourceSpec } from '../api/crud.js';

const ajv = new Ajv({ strict: false, allErrors: true });

/** Param definitions: a JSON schema per param, an optional default, and whether the value is secret. */
export const paramsResource: ResourceSpec<ParamDefT> = {
  collection: 'params',
  path: 'params',
  label: 'param',
  tag: 'Params',
  schema: ParamDef,
  createSchema: ParamDefCreate,
  patchSchema: ParamDefPatch,
  build: (input, { id, now }) => ({ id, schema: {}, secret: false, ...(input as object), createdAt: now, updatedAt: now }) as ParamDefT,
  check: (def) => {
    let validate;
    try {
      validate = ajv.compile(def.schema);
    } catch (e) {
      throw ApiError.badRequest(`schema of param "${def.name}" is not a valid JSON schema: ${(e as Error).message}`, [{ path: 'schema', message: (e as Error).message }]);
    }
    if (def.default !== undefined && !validate(def.default)) {
      throw ApiError.badRequest(`default of param "${def.name}" does not match its schema`, validate.errors?.map((e) => ({ path: `default${e.instancePath.replace(/\//g, '.')}`, message: e.message })));
    }
  },
};

/** Validates param values against their definitions (unknown params are allowed, as free-form). */
export function checkParamValues(values: Record<string, unknown>, defs: (name: string) => ParamDefT | undefined, where: string): void {
  const problems: { path: string; message: string }[] = [];
  for (const [name, value] of Object.entries(values)) {
    const def = defs(name);
    if (!def || isSealed(value)) continue;
    const validate = ajv.compile(def.schema);
    if (!validate(value)) for (const e of validate.errors ?? []) problems.push({ path: `${where}.${name}${e.instancePath.replace(/\//g, '.')}`, message: e.message ?? 'invalid' });
  }
  if (problems.length > 0) throw ApiError.badRequest(`invalid param value(s): ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, problems);
}
