import { Site, SiteCreate, SitePatch, type Site as SiteT } from '../../shared/api/resources.js';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import { redactSealed, sealParams } from '../secrets/seal.js';
import type { Referrer, ResourceSpec } from '../api/crud.js';
import type { ParamHolder } from '../params/resources.js';
import { sealingFor, secretParamNames } from '../params/sealing.js';
import type { CollectionSpec } from '../store/types.js';

export const SITES = 'sites';
export const sitesCollection: CollectionSpec = { name: SITES, unique: [{ field: 'name', values: (d) => [String(d.name)] }] };
/** A site's param values are sealed to the site's agents. */
export const sitesParamHolder: ParamHolder = { collection: SITES, sealScope: (d) => ({ site: String(d.name) }) };

/** `referrers`: what names a site (machines); a site in use can be neither deleted nor renamed. */
export function sitesResource(referrers: Referrer[]): ResourceSpec<SiteT> {
  return {
    collection: SITES,
    path: 'sites',
    siteField: 'name',
    unscopedCreateDelete: true,
    label: 'site',
    tag: 'Sites',
    schema: Site,
    createSchema: SiteCreate,
    patchSchema: SitePatch,
    build: (input, { id, now }) => ({ id, params: {}, ...(input as object), createdAt: now, updatedAt: now }) as SiteT,
    beforeDelete: (site, deps) => {
      for (const r of referrers) {
        const used = r.count(deps.store, site.name);
        if (used > 0) throw new ConflictError(`site "${site.name}" still has ${used} ${r.noun}(s); move or delete them first`);
      }
    },
    check: (site, deps, before) => {
      for (const r of referrers) {
        if (before && before.name !== site.name && r.count(deps.store, before.name) > 0) {
          throw new ConflictError(`site "${before.name}" has ${r.noun}s; it cannot be renamed`);
        }
      }
    },
    transform: (site, deps) => ({ ...site, params: sealParams(sealingFor(deps.store), site.params, { site: site.name }, 'params') }),
    view: (site, deps) => ({ ...site, params: redactSealed(site.params, secretParamNames(deps.store)) }),
  };
}
