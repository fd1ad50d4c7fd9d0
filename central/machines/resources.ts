import { z } from 'zod';
import { Machine, MachineCreate, MachinePatch, type Machine as MachineT, type ParamDef } from '../../shared/api/resources.js';
import { BmcConfig } from '../../shared/api/bmc.js';
import { InvalidError } from '../../shared/errors/domain-errors.js';
import { redactSealed, sealParams } from '../secrets/seal.js';
import { defaultMerge, type Referrer, type ResourceSpec } from '../api/crud.js';
import { checkParamValues, PARAMS, type ParamHolder } from '../params/resources.js';
import { sealingFor, secretParamNames } from '../params/sealing.js';
import { PROFILES } from '../profiles/resources.js';
import { SITES } from '../sites/resources.js';
import type { CollectionSpec, Doc } from '../store/types.js';

export const MACHINES = 'machines';
export const machinesCollection: CollectionSpec = {
  name: MACHINES,
  unique: [
    { field: 'name', values: (d: Doc) => [String(d.name)] },
    { field: 'mac', values: (d) => ((d.macs as string[] | undefined) ?? []).map((m) => m.toLowerCase()) },
  ],
};
/** Machines name their site: a site with machines can be neither deleted nor renamed. */
export const machinesOfSite: Referrer = { noun: 'machine', count: (store, site) => store.list(MACHINES, { where: { site }, limit: 1 }).total };
/** Machines name their profiles: a profile in use can be neither deleted nor renamed. */
export const machinesOfProfile: Referrer = { noun: 'machine', count: (store, profile) => store.list(MACHINES, { where: { profiles: profile }, limit: 1 }).total };
/** A machine's param values are sealed to its site's agents. */
export const machinesParamHolder: ParamHolder = { collection: MACHINES, sealScope: (d) => ({ site: String(d.site) }) };

/** Params that hold a BMC password: always sealed, whether or not a param definition says secret. */
export function bmcPasswordParams(m: { bmc?: { passwordParam: string } }): string[] {
  return m.bmc && m.bmc.passwordParam !== DEFAULT_BMC_PASSWORD_PARAM ? [DEFAULT_BMC_PASSWORD_PARAM, m.bmc.passwordParam] : [DEFAULT_BMC_PASSWORD_PARAM];
}
const DEFAULT_BMC_PASSWORD_PARAM = 'bmc_password';

/**
 * A BMC set without an address takes the one discovery read in-band (`facts.bmc.address`); an address
 * the operator gave stays as it is.
 */
export function withOfferedBmcAddress(m: MachineT): MachineT {
  if (!m.bmc || m.bmc.address) return m;
  // What the machine reported is data from the provisioning network: only a plain host is taken.
  const found = m.facts?.bmc?.address;
  if (!found || !BmcConfig.shape.address.safeParse(found).success) throw new InvalidError(`machine "${m.name}": bmc.address not given and discovery has not reported one (give it, or let the machine run discovery first)`, [{ path: 'bmc.address', message: 'required: no discovered BMC address' }]);
  return { ...m, bmc: { ...m.bmc, address: found } };
}

export const machinesResource: ResourceSpec<MachineT> = {
  collection: MACHINES,
  path: 'machines',
  siteField: 'site',
  label: 'machine',
  tag: 'Machines',
  schema: Machine,
  createSchema: MachineCreate,
  patchSchema: MachinePatch,
  filters: z.object({
    site: z.string().optional(),
    profile: z.string().optional(),
    mac: z.string().optional(),
    bootenv: z.string().optional(),
    state: z.string().optional(),
    rack: z.string().optional(),
  }),
  // ?q= finds a machine by part of its name, id, any MAC, rack or address (the console's search box).
  searchFields: ['name', 'id', 'macs', 'rack', 'address'],
  toWhere: (q) => {
    const where: Record<string, string> = {};
    if (q.site) where.site = q.site;
    if (q.profile) where.profiles = q.profile;
    if (q.mac) where.macs = q.mac.toLowerCase().replace(/-/g, ':');
    if (q.bootenv) where.bootenv = q.bootenv;
    if (q.state) where.state = q.state;
    if (q.rack) where.rack = q.rack;
    // Filter by param value: ?param.role=web
    for (const [k, v] of Object.entries(q)) if (k.startsWith('param.') && v !== undefined) where[`params.${k.slice(6)}`] = v;
    return where;
  },
  // A new machine starts `discovered`; its state changes only through central/lifecycle.
  build: (input, { id, now }) => withOfferedBmcAddress({ id, ...(input as object), state: 'discovered', createdAt: now, updatedAt: now } as MachineT),
  merge: (doc, patch, now) => withOfferedBmcAddress(defaultMerge(doc, patch, now)),
  check: (m, deps) => {
    if (!deps.store.findUnique(SITES, 'name', m.site)) {
      throw new InvalidError(`site "${m.site}" does not exist`, [{ path: 'site', message: 'unknown site' }]);
    }
    m.profiles.forEach((p, i) => {
      if (!deps.store.findUnique(PROFILES, 'name', p)) throw new InvalidError(`profile "${p}" does not exist`, [{ path: `profiles.${i}`, message: 'unknown profile' }]);
    });
    if (m.bootenv !== 'discovery' && m.bootenv !== 'local') {
      const env = deps.store.counts().bootenvs === undefined ? undefined : deps.store.findUnique<{ id: string; onlyUnknown?: boolean }>('bootenvs', 'name', m.bootenv);
      if (!env) throw new InvalidError(`boot environment "${m.bootenv}" does not exist (import one with "underlay bootenvs import images")`, [{ path: 'bootenv', message: 'unknown boot environment' }]);
      if (env.onlyUnknown) throw new InvalidError(`boot environment "${m.bootenv}" is only for unknown machines`, [{ path: 'bootenv', message: 'only for unknown machines' }]);
    }
    checkParamValues(m.params, (n) => deps.store.findUnique<ParamDef>(PARAMS, 'name', n), 'params');
  },
  // The BMC's password param is sealed even when no param definition marks it secret (issue 13).
  transform: (m, deps) => ({ ...m, params: sealParams(sealingFor(deps.store), m.params, { site: m.site }, 'params', bmcPasswordParams(m)) }),
  view: (m, deps) => ({ ...m, params: redactSealed(m.params, new Set([...secretParamNames(deps.store), ...bmcPasswordParams(m)])) }),
};
