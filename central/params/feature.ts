import type { ParamDef } from '../../shared/api/resources.js';
import { registerCrud } from '../api/crud.js';
import type { CentralFeature, StateContributor } from '../api/feature.js';
import { PARAMS, paramsCollection, paramsResource, type ParamHolder } from './resources.js';

/** Param definitions for the agents (a secret param has no default: refused at write; one stored before that is never sent). */
export const paramDefsState: StateContributor = (_site, store) => ({
  paramDefs: store.list<ParamDef>(PARAMS).items.map((d) => ({ name: d.name, schema: d.schema, ...(d.secret ? {} : { default: d.default }), secret: d.secret })),
});

/** Param definitions: `/api/v1/params`. `holders`: the collections holding param values (sealed when a param becomes secret). */
export function paramsFeature(opts: { holders: ParamHolder[] }): CentralFeature {
  return {
    name: 'params',
    collections: [paramsCollection],
    routes: (app, deps) => registerCrud(app, deps, paramsResource(opts.holders)),
    stateContributors: [paramDefsState],
    stateCollections: [PARAMS],
  };
}
