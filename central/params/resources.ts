import { Ajv } from 'ajv';
import { ParamDef, ParamDefCreate, ParamDefPatch, type ParamDef as ParamDefT } from '../../shared/api/resources.js';
import { ApiError } from '../api/api-error.js';
import { isSealed, sealParams } from '../secrets/seal.js';
import type { Doc, Store } from '../store/types.js';
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
    if (def.secret && def.default !== undefined) {
      throw ApiError.badRequest(`param "${def.name}" is secret and cannot have a default: a default is stored and served in plaintext; set the value per site, profile or machine (it is sealed to their agents)`, [{ path: 'default', message: 'not allowed on a secret param' }]);
    }
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
  // Marking a param secret seals its existing plaintext values everywhere, in the same store commit.
  alsoWrite: (def, deps, before) => (def.secret && !before?.secret ? sealExistingValues(deps.store, def.name) : []),
  // A secret param's default (only one stored before secret defaults were refused) is never shown.
  view: (def) => (def.secret ? (({ default: _d, ...rest }) => rest)(def) : def),
};

/** Every machine, site and profile holding a plaintext value of `name`, with that value sealed to its agents. */
function sealExistingValues(store: Store, name: string): { collection: string; doc: Doc; before: Doc }[] {
  const out: { collection: string; doc: Doc; before: Doc }[] = [];
  const holders: [string, (d: Doc) => { site: string } | 'all'][] = [
    ['machines', (d) => ({ site: String(d.site) })],
    ['sites', (d) => ({ site: String(d.name) })],
    ['profiles', () => 'all'],
  ];
  for (const [collection, scopeOf] of holders) {
    for (const d of store.list<Doc & { params?: Record<string, unknown> }>(collection).items) {
      if (!d.params || !(name in d.params) || isSealed(d.params[name])) continue;
      out.push({ collection, doc: { ...d, params: sealParams(store, d.params, scopeOf(d), `${collection}.${String(d.name)}.params`, [name]), updatedAt: new Date().toISOString() }, before: d });
    }
  }
  return out;
}

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
