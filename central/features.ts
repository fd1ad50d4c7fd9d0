import { agentsFeature } from './agents/feature.js';
import { inventoryFeature } from './ansible/feature.js';
import { servicesFeature } from './services/feature.js';
import type { CentralFeature } from './server/serve.js';

/** The features a production central runs with. */
export async function defaultFeatures(): Promise<CentralFeature[]> {
  return [agentsFeature(), inventoryFeature(), servicesFeature()];
}
