import { Workflow, WorkflowCreate, WorkflowPatch, type Workflow as WorkflowT } from '../../shared/api/workflows.js';
import type { ResourceSpec } from '../api/crud.js';
import type { CollectionSpec } from '../store/types.js';

export const WORKFLOWS = 'workflows';
export const workflowsCollection: CollectionSpec = { name: WORKFLOWS, unique: [{ field: 'name', values: (d) => [String(d.name)] }] };

/**
 * Workflows are global data (like profiles): an ordered list of stages of steps with gates. A run keeps
 * the stages it started with, so updating or deleting a workflow never changes a running run.
 */
export const workflowsResource: ResourceSpec<WorkflowT> = {
  collection: WORKFLOWS,
  path: 'workflows',
  label: 'workflow',
  tag: 'Workflows',
  schema: Workflow,
  createSchema: WorkflowCreate,
  patchSchema: WorkflowPatch,
  build: (input, { id, now }) => ({ id, ...(input as object), createdAt: now, updatedAt: now }) as WorkflowT,
};
