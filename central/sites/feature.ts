import type { Site } from '../../shared/api/resources.js';
import { registerCrud } from '../api/crud.js';
import type { CentralFeature, StateContributor } from '../api/feature.js';
import { paramsForAgent } from '../secrets/seal.js';
import type { Referrer } from '../api/crud.js';
import { SITES, sitesCollection, sitesResource } from './resources.js';

/** The site's own params in its desired state (each agent gets only its own sealed boxes). */
export const siteState: StateContributor = (site, store, agentId) => {
  const params = store.findUnique<Site>(SITES, 'name', site)?.params ?? {};
  return { site: { name: site, params: agentId ? paramsForAgent(params, agentId) : params } };
};

/** Sites: `/api/v1/sites`. `referrers`: what names a site (central/features.ts hands over the machines'). */
export function sitesFeature(opts: { referrers?: Referrer[] } = {}): CentralFeature {
  return {
    name: 'sites',
    collections: [sitesCollection],
    routes: (app, deps) => registerCrud(app, deps, sitesResource(opts.referrers ?? [])),
    stateContributors: [siteState],
    stateCollections: [SITES],
  };
}
