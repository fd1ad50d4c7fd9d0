import { Profile, ProfileCreate, ProfilePatch, type Profile as ProfileT } from '../../shared/api/resources.js';
import { ApiError } from '../api/api-error.js';
import { redactSealed, sealParams, secretParamNames } from '../secrets/seal.js';
import type { ResourceSpec } from '../api/crud.js';

/** The profile named "global" carries params every machine inherits (after its site). */
export const GLOBAL_PROFILE = 'global';

export const profilesResource: ResourceSpec<ProfileT> = {
  collection: 'profiles',
  path: 'profiles',
  label: 'profile',
  tag: 'Profiles',
  schema: Profile,
  createSchema: ProfileCreate,
  patchSchema: ProfilePatch,
  build: (input, { id, now }) => ({ id, params: {}, ...(input as object), createdAt: now, updatedAt: now }) as ProfileT,
  beforeDelete: (profile, deps) => {
    const used = deps.store.list('machines', { where: { profiles: profile.name }, limit: 1 }).total;
    if (used > 0) throw ApiError.conflict(`profile "${profile.name}" is used by ${used} machine(s)`);
  },
  check: (profile, deps, before) => {
    if (before && before.name !== profile.name && deps.store.list('machines', { where: { profiles: before.name }, limit: 1 }).total > 0) {
      throw ApiError.conflict(`profile "${before.name}" is used by machines; it cannot be renamed`);
    }
  },
  transform: (profile, deps) => ({ ...profile, params: sealParams(deps.store, profile.params, 'all', 'params') }),
  view: (profile, deps) => ({ ...profile, params: redactSealed(profile.params, secretParamNames(deps.store)) }),
};
