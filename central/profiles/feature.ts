import type { Profile } from '../../shared/api/resources.js';
import { registerCrud } from '../api/crud.js';
import type { CentralFeature, StateContributor } from '../api/feature.js';
import { paramsForAgent } from '../secrets/seal.js';
import type { Referrer } from '../api/crud.js';
import { GLOBAL_PROFILE, PROFILES, profilesCollection, profilesResource } from './resources.js';

/** Every profile's params, and the global profile's as `globalParams` (each agent gets only its own sealed boxes). */
export const profilesState: StateContributor = (_site, store, agentId) => {
  const own = (p: Record<string, unknown>) => (agentId ? paramsForAgent(p, agentId) : p);
  const profiles = store.list<Profile>(PROFILES).items;
  return {
    profiles: profiles.map((p) => ({ name: p.name, params: own(p.params) })),
    globalParams: own(profiles.find((p) => p.name === GLOBAL_PROFILE)?.params ?? {}),
  };
};

/** Profiles: `/api/v1/profiles` (the one named "global" carries params every machine inherits). */
export function profilesFeature(opts: { referrers?: Referrer[] } = {}): CentralFeature {
  return {
    name: 'profiles',
    collections: [profilesCollection],
    routes: (app, deps) => registerCrud(app, deps, profilesResource(opts.referrers ?? [])),
    stateContributors: [profilesState],
    stateCollections: [PROFILES],
  };
}
