import { createHash } from 'node:crypto';
import { canonicalJson } from '../../shared/envelope/canonical.js';
import type { Machine, ParamDef, Profile, Site } from '../../shared/api/resources.js';
import type { DesiredState, MachineState } from '../../shared/protocol/desired-state.js';
import type { Store } from '../store/types.js';
import { GLOBAL_PROFILE } from '../inventory/profiles.js';
import { paramsForAgent } from '../secrets/seal.js';

/** A feature adds a section to every site's desired state (subnets, boot environments …). */
export type StateContributor = (site: string, store: Store) => Partial<Omit<DesiredState, 'version' | 'generatedAt' | 'site' | 'machines'>>;

/** Collections whose changes alter some site's desired state. */
export const STATE_COLLECTIONS = new Set(['sites', 'machines', 'profiles', 'params']);

function machineState(m: Machine): MachineState {
  return {
    id: m.id,
    name: m.name,
    macs: m.macs,
    ...(m.uuid ? { uuid: m.uuid } : {}),
    ...(m.serial ? { serial: m.serial } : {}),
    ...(m.address ? { address: m.address } : {}),
    ...(m.rack ? { rack: m.rack } : {}),
    bootenv: m.bootenv,
    state: m.state,
    netboot: m.netboot,
    ...(m.secretsGeneration ? { secretsGeneration: m.secretsGeneration } : {}),
    profiles: m.profiles,
    params: m.params,
  };
}

/** Builds a site's desired state; its version is a hash of its content, so unchanged state is not resent. */
export function buildDesiredState(store: Store, siteName: string, contributors: StateContributor[] = [], agentId?: string): DesiredState {
  const site = store.findUnique<Site>('sites', 'name', siteName);
  // Secret params: each agent gets only its own sealed box (others' are dropped).
  const own = (p: Record<string, unknown>) => (agentId ? paramsForAgent(p, agentId) : p);
  const machines = store.list<Machine>('machines', { where: { site: siteName } }).items.map((m) => ({ ...machineState(m), params: own(m.params) }));
  const profiles = store.list<Profile>('profiles').items;
  const body: Omit<DesiredState, 'version' | 'generatedAt'> = {
    site: { name: siteName, params: own(site?.params ?? {}) },
    machines,
    subnets: [],
    reservations: [],
    bootenvs: [],
    profiles: profiles.map((p) => ({ name: p.name, params: own(p.params) })),
    // A secret param has no default (refused at write); one stored before that is never sent.
    paramDefs: store.list<ParamDef>('params').items.map((d) => ({ name: d.name, schema: d.schema, ...(d.secret ? {} : { default: d.default }), secret: d.secret })),
    globalParams: own(profiles.find((p) => p.name === GLOBAL_PROFILE)?.params ?? {}),
    templates: {},
    artifacts: [],
  };
  for (const c of contributors) Object.assign(body, c(siteName, store));
  const version = createHash('sha256').update(canonicalJson(body)).digest('hex').slice(0, 32);
  return { version, generatedAt: new Date().toISOString(), ...body };
}
