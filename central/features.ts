import type { CentralFeature } from './server/serve.js';

/** The features a production central runs with. Later issues append theirs. */
export async function defaultFeatures(): Promise<CentralFeature[]> {
  return [];
}
