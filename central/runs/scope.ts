import type { Machine } from '../../shared/api/resources.js';
import { resolveMachineParams } from '../machines/params-routes.js';
import type { ApiDeps } from '../api/deps.js';
import { bestAddress } from '../lifecycle/addresses.js';
import { SERVICES } from '../services/registry.js';
import type { Service } from '../../shared/api/services.js';
import type { Doc, Store } from '../store/types.js';
import type { StepScope } from './render.js';
import { pkiTemplateContext } from '../../shared/pki/template-context.js';
import type { ServiceCa } from '../../shared/api/pki.js';
import { SERVICE_CAS } from '../service-pki/resources.js';

/** A machine's resolved params as plain values (secret ones stay sealed: a template never sees a secret). */
export function machineParams(store: Store, m: Machine): Record<string, unknown> {
  const resolved = resolveMachineParams({ store } as ApiDeps, m);
  return Object.fromEntries(Object.entries(resolved).filter(([, r]) => !r.secret).map(([k, r]) => [k, r.value]));
}

/** Everything a step's templates see (central/runs/render.ts). */
export function stepScope(store: Store, m: Machine, run: StepScope['run']): StepScope {
  const services: StepScope['services'] = {};
  // As stored (what the gate that just opened saw), not the registry's memory, which follows the store.
  for (const s of store.list<Service & Doc>(SERVICES).items) {
    const members = s.members.map((x) => ({ id: x.id, ...(x.machine ? { machine: x.machine } : {}), address: x.address, port: x.port, status: x.status, tags: x.tags }));
    services[s.name] = { passing: members.filter((x) => x.status === 'passing').length, members };
  }
  const address = bestAddress(m);
  return {
    machine: { id: m.id, name: m.name, site: m.site, ...(m.rack ? { rack: m.rack } : {}), ...(address ? { address } : {}), addresses: (m.addresses ?? []).map((a) => a.address), state: m.state },
    params: machineParams(store, m),
    run,
    services,
    // A deployed machine runs the installed OS's runner (certificates under /etc), any other the discovery one.
    pki: pkiTemplateContext(store.counts()[SERVICE_CAS] ? store.list<ServiceCa & Doc>(SERVICE_CAS).items : [], m.state === 'deployed' ? 'os' : 'discovery'),
  };
}
