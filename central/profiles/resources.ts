import { Profile, ProfileCreate, ProfilePatch, type Profile as ProfileT } from '../../shared/api/resources.js';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import { redactSealed, sealParams } from '../secrets/seal.js';
import type { ResourceSpec } from '../api/crud.js';
import { MACHINES } from '../machines/resources.js';
import type { ParamHolder } from '../params/resources.js';
import { sealingFor, secretParamNames } from '../params/sealing.js';
import type { CollectionSpec } from '../store/types.js';

export const PROFILES = 'profiles';
export const profilesCollection: CollectionSpec = { name: PROFILES, unique: [{ field: 'name', values: (d) => [String(d.name)] }] };
/** A profile applies at every site: its param values are sealed to every agent. */
export const profilesParamHolder: ParamHolder = { collection: PROFILES, sealScope: () => 'all' };

/** The profile named "global" carries params every machine inherits (after its site). */
export const GLOBAL_PROFILE = 'global';

export const profilesResource: ResourceSpec<ProfileT> = {
  collection: PROFILES,
  path: 'profiles',
  label: 'profile',
  tag: 'Profiles',
  schema: Profile,
  createSchema: ProfileCreate,
  patchSchema: ProfilePatch,
  build: (input, { id, now }) => ({ id, params: {}, ...(input as object), createdAt: now, updatedAt: now }) as ProfileT,
  beforeDelete: (profile, deps) => {
    const used = deps.store.list(MACHINES, { where: { profiles: profile.name }, limit: 1 }).total;
    if (used > 0) throw new ConflictError(`profile "${profile.name}" is used by ${used} machine(s)`);
  },
  check: (profile, deps, before) => {
    if (before && before.name !== profile.name && deps.store.list(MACHINES, { where: { profiles: before.name }, limit: 1 }).total > 0) {
      throw new ConflictError(`profile "${before.name}" is used by machines; it cannot be renamed`);
    }
  },
  transform: (profile, deps) => ({ ...profile, params: sealParams(sealingFor(deps.store), profile.params, 'all', 'params') }),
  view: (profile, deps) => ({ ...profile, params: redactSealed(profile.params, secretParamNames(deps.store)) }),
};
