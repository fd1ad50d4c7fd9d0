import { Ajv } from 'ajv';
import { ParamDef, ParamDefCreate, ParamDefPatch, type ParamDef as ParamDefT } from '../../shared/api/resources.js';
import { InvalidError, type ErrorDetail } from '../../shared/errors/domain-errors.js';
import { isSealed, sealParams } from '../secrets/seal.js';
import type { CollectionSpec, Doc, Store } from '../store/types.js';
import type { ResourceSpec } from '../api/crud.js';
import { sealingFor } from './sealing.js';

export const PARAMS = 'params';
/**
 * A collection whose documents hold param values (`params: {…}`), and the agents scope a value there is
 * sealed to. Each holder's folder exports its own (sites, profiles, machines); central/features.ts
 * hands them to the params feature, so params knows no holder.
 */
export interface ParamHolder {
  collection: string;
  sealScope: (doc: Doc) => { site: string } | 'all';
}

export const paramsCollection: CollectionSpec = { name: PARAMS, unique: [{ field: 'name', values: (d) => [String(d.name)] }] };

const ajv = new Ajv({ strict: false, allErrors: true });

/** Param definitions: a JSON schema per param, an optional default, and whether the value is secret. */
export function paramsResource(holders: ParamHolder[]): ResourceSpec<ParamDefT> {
  return {
    collection: PARAMS,
    path: 'params',
    label: 'param',
    tag: 'Params',
    schema: ParamDef,
    createSchema: ParamDefCreate,
    patchSchema: ParamDefPatch,
    build: (input, { id, now }) => ({ id, schema: {}, secret: false, ...(input as object), createdAt: now, updatedAt: now }) as ParamDefT,
    check: (def) => {
      if (def.secret && def.default !== undefined) {
        throw new InvalidError(`param "${def.name}" is secret and cannot have a default: a default is stored and served in plaintext; set the value per site, profile or machine (it is sealed to their agents)`, [{ path: 'default', message: 'not allowed on a secret param' }]);
      }
      let validate;
      try {
        validate = ajv.compile(def.schema);
      } catch (e) {
        throw new InvalidError(`schema of param "${def.name}" is not a valid JSON schema: ${(e as Error).message}`, [{ path: 'schema', message: (e as Error).message }]);
      }
      if (def.default !== undefined && !validate(def.default)) {
        throw new InvalidError(`default of param "${def.name}" does not match its schema`, validate.errors?.map((e): ErrorDetail => ({ path: `default${e.instancePath.replace(/\//g, '.')}`, message: e.message ?? 'invalid' })));
      }
    },
    // Marking a param secret seals its existing plaintext values everywhere, in the same store commit.
    alsoWrite: (def, deps, before) => (def.secret && !before?.secret ? sealExistingValues(deps.store, holders, def.name) : []),
    // A secret param's default (only one stored before secret defaults were refused) is never shown.
    view: (def) => (def.secret ? (({ default: _d, ...rest }) => rest)(def) : def),
  };
}

/** Every machine, site and profile holding a plaintext value of `name`, with that value sealed to its agents. */
function sealExistingValues(store: Store, holders: ParamHolder[], name: string): { collection: string; doc: Doc; before: Doc }[] {
  const out: { collection: string; doc: Doc; before: Doc }[] = [];
  for (const { collection, sealScope: scopeOf } of holders) {
    for (const d of store.list<Doc & { params?: Record<string, unknown> }>(collection).items) {
      if (!d.params || !(name in d.params) || isSealed(d.params[name])) continue;
      out.push({ collection, doc: { ...d, params: sealParams(sealingFor(store), d.params, scopeOf(d), `${collection}.${String(d.name)}.params`, [name]), updatedAt: new Date().toISOString() }, before: d });
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
  if (problems.length > 0) throw new InvalidError(`invalid param value(s): ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, problems);
}
