import type { ParamDef } from '../../shared/api/resources.js';
import { AGENTS, type AgentDoc } from '../agents/collections.js';
import type { SealContext } from '../secrets/seal.js';
import type { Store } from '../store/types.js';
import { PARAMS } from './resources.js';

/** Names of the params defined secret. */
export function secretParamNames(store: Store): Set<string> {
  return new Set(store.list<ParamDef>(PARAMS).items.filter((d) => d.secret).map((d) => d.name));
}

/** Sealing against the store: secret params from the param definitions, recipients from the joined, unrevoked agents. */
export function sealingFor(store: Store): SealContext {
  return {
    secretNames: () => secretParamNames(store),
    recipients: (scope) =>
      store
        .list<AgentDoc>(AGENTS, scope === 'all' ? {} : { where: { site: scope.site } })
        .items.filter((a) => !a.revokedAt)
        .map((a) => ({ id: a.id, sealPublicKey: a.sealPublicKey })),
  };
}
