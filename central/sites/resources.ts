import { Site, SiteCreate, SitePatch, type Site as SiteT } from '../../shared/api/resources.js';
import { ApiError } from '../api/api-error.js';
import { redactSealed, sealParams, secretParamNames } from '../secrets/seal.js';
import type { ResourceSpec } from '../api/crud.js';

export const sitesResource: ResourceSpec<SiteT> = {
  collection: 'sites',
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
    const used = deps.store.list('machines', { where: { site: site.name }, limit: 1 }).total;
    if (used > 0) throw ApiError.conflict(`site "${site.name}" still has ${used} machine(s); move or delete them first`);
  },
  check: (site, deps, before) => {
    if (before && before.name !== site.name && deps.store.list('machines', { where: { site: before.name }, limit: 1 }).total > 0) {
      throw ApiError.conflict(`site "${before.name}" has machines; it cannot be renamed`);
    }
  },
  transform: (site, deps) => ({ ...site, params: sealParams(deps.store, site.params, { site: site.name }, 'params') }),
  view: (site, deps) => ({ ...site, params: redactSealed(site.params, secretParamNames(deps.store)) }),
};
