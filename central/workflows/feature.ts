import { registerCrud } from '../api/crud.js';
import type { CentralFeature } from '../api/feature.js';
import { workflowsCollection, workflowsResource } from './resources.js';

/** Workflows: `/api/v1/workflows` (stages, steps, gates); central/runs runs them. */
export function workflowsFeature(): CentralFeature {
  return {
    name: 'workflows',
    collections: [workflowsCollection],
    routes: (app, deps) => registerCrud(app, deps, workflowsResource),
  };
}
