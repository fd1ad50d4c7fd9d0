import { join } from 'node:path';
import type { CentralFeature, StateContributor } from '../api/feature.js';
import { ARTIFACTS, ArtifactCatalog, type ArtifactDoc } from './catalog.js';
import { registerArtifactRoutes } from './routes.js';
import { ArtifactFiles } from './store.js';

/** Every site gets the artifact index: the agent pulls what it lacks, content-addressed. */
export const artifactStateContributor: StateContributor = (_site, store) => ({
  artifacts: store
    .list<ArtifactDoc>(ARTIFACTS, { sort: 'createdAt', limit: 1_000_000 })
    .items.map((a) => ({ sha256: a.sha256, size: a.size, urls: a.urls, ...(a.name !== undefined ? { name: a.name } : {}) })),
});

export function artifactsFeature(): CentralFeature {
  return {
    name: 'artifacts',
    collections: [{ name: ARTIFACTS, unique: [] }],
    stateContributors: [artifactStateContributor],
    stateCollections: [ARTIFACTS],
    routes: (app, deps) => registerArtifactRoutes(app, deps, new ArtifactFiles(join(deps.dataDir, 'artifacts')), new ArtifactCatalog(deps.store)),
  };
}
