import { Site, SiteCreate, SitePatch, type Site as SiteT } from '../../shared/api/resources.js';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import { redactSealed, sealParams } from '../secrets/seal.js';
import type { ResourceSpec } from '../api/crud.js';
import { MACHINES } from '../machines/resources.js';
import type { ParamHolder } from '../params/resources.js';
import { sealingFor, secretParamNames } from '../params/sealing.js';
import type { CollectionSpec } from '../store/types.js';

export const SITES = 'sites';
export const sitesCollection: CollectionSpec = { name: SITES, unique: [{ field: 'name', values: (d) => [String(d.name)] }] };
/** A site's param values are sealed to the site's agents. */
export const sitesParamHolder: ParamHolder = { collection: SITES, sealScope: (d) => ({ site: String(d.name) }) };

export const sitesResource: ResourceSpec<SiteT> = {
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
    const used = deps.store.list(MACHINES, { where: { site: site.name }, limit: 1 }).total;
    if (used > 0) throw new ConflictError(`site "${site.name}" still has ${used} machine(s); move or delete them first`);
  },
  check: (site, deps, before) => {
    if (before && before.name !== site.name && deps.store.list(MACHINES, { where: { site: before.name }, limit: 1 }).total > 0) {
      throw new ConflictError(`site "${before.name}" has machines; it cannot be renamed`);
    }
  },
  transform: (site, deps) => ({ ...site, params: sealParams(sealingFor(deps.store), site.params, { site: site.name }, 'params') }),
  view: (site, deps) => ({ ...site, params: redactSealed(site.params, secretParamNames(deps.store)) }),
};
