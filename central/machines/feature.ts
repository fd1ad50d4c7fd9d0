import type { Machine } from '../../shared/api/resources.js';
import type { MachineState } from '../../shared/protocol/desired-state.js';
import { registerCrud } from '../api/crud.js';
import type { CentralFeature, StateContributor } from '../api/feature.js';
import { paramsForAgent } from '../secrets/seal.js';
import { registerMachineParamRoutes } from './params-routes.js';
import { registerMachineRearmRoute } from './rearm-route.js';
import { MACHINES, machinesCollection, machinesResource } from './resources.js';

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
    ...(m.bmc ? { bmc: m.bmc } : {}),
    profiles: m.profiles,
    params: m.params,
  };
}

/** The site's machines (each agent gets only its own sealed boxes of secret params). */
export const machinesState: StateContributor = (site, store, agentId) => ({
  machines: store.list<Machine>(MACHINES, { where: { site } }).items.map((m) => ({ ...machineState(m), params: agentId ? paramsForAgent(m.params, agentId) : m.params })),
});

/** Machines: `/api/v1/machines`, their params (resolved) and the secrets re-arm. */
export function machinesFeature(): CentralFeature {
  return {
    name: 'machines',
    collections: [machinesCollection],
    routes: (app, deps) => {
      registerCrud(app, deps, machinesResource);
      registerMachineParamRoutes(app, deps);
      registerMachineRearmRoute(app, deps);
    },
    stateContributors: [machinesState],
    stateCollections: [MACHINES],
  };
}
