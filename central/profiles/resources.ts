import { Profile, ProfileCreate, ProfilePatch, type Profile as ProfileT } from '../../shared/api/resources.js';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import { redactSealed, sealParams } from '../secrets/seal.js';
import type { Referrer, ResourceSpec } from '../api/crud.js';
import type { ParamHolder } from '../params/resources.js';
import { sealingFor, secretParamNames } from '../params/sealing.js';
import type { CollectionSpec } from '../store/types.js';

export const PROFILES = 'profiles';
export const profilesCollection: CollectionSpec = { name: PROFILES, unique: [{ field: 'name', values: (d) => [String(d.name)] }] };
/** A profile applies at every site: its param values are sealed to every agent. */
export const profilesParamHolder: ParamHolder = { collection: PROFILES, sealScope: () => 'all' };

/** The profile named "global" carries params every machine inherits (after its site). */
export const GLOBAL_PROFILE = 'global';

/** `referrers`: what names a profile (machines); a profile in use can be neither deleted nor renamed. */
export function profilesResource(referrers: Referrer[]): ResourceSpec<ProfileT> {
  return {
    collection: PROFILES,
    path: 'profiles',
    label: 'profile',
    tag: 'Profiles',
    schema: Profile,
    createSchema: ProfileCreate,
    patchSchema: ProfilePatch,
    build: (input, { id, now }) => ({ id, params: {}, ...(input as object), createdAt: now, updatedAt: now }) as ProfileT,
    beforeDelete: (profile, deps) => {
      for (const r of referrers) {
        const used = r.count(deps.store, profile.name);
        if (used > 0) throw new ConflictError(`profile "${profile.name}" is used by ${used} ${r.noun}(s)`);
      }
    },
    check: (profile, deps, before) => {
      for (const r of referrers) {
        if (before && before.name !== profile.name && r.count(deps.store, before.name) > 0) {
          throw new ConflictError(`profile "${before.name}" is used by ${r.noun}s; it cannot be renamed`);
        }
      }
    },
    transform: (profile, deps) => ({ ...profile, params: sealParams(sealingFor(deps.store), profile.params, 'all', 'params') }),
    view: (profile, deps) => ({ ...profile, params: redactSealed(profile.params, secretParamNames(deps.store)) }),
  };
}
