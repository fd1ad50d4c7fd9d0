import { createHash } from 'node:crypto';
import { canonicalJson } from '../../shared/envelope/canonical.js';
import type { DesiredState } from '../../shared/protocol/desired-state.js';
import type { StateContributor } from '../api/feature.js';
import type { Store } from '../store/types.js';

export type { StateContributor };

/**
 * Builds a site's desired state from every feature's contributor (sites, machines, profiles, params,
 * boot, artifacts …: central/features.ts); its version is a hash of its content, so unchanged state is
 * not resent. `agentId`: secret params carry only that agent's own sealed boxes.
 */
export function buildDesiredState(store: Store, siteName: string, contributors: StateContributor[] = [], agentId?: string): DesiredState {
  const body: Omit<DesiredState, 'version' | 'generatedAt'> = {
    site: { name: siteName, params: {} },
    machines: [],
    subnets: [],
    reservations: [],
    bootenvs: [],
    profiles: [],
    paramDefs: [],
    globalParams: {},
    templates: {},
    artifacts: [],
  };
  for (const c of contributors) Object.assign(body, c(siteName, store, agentId));
  const version = createHash('sha256').update(canonicalJson(body)).digest('hex').slice(0, 32);
  return { version, generatedAt: new Date().toISOString(), ...body };
}
