import type { CollectionSpec } from '../store/types.js';

/** Signed tasks and their history (central/tasks/service.ts). */
export const TASKS = 'tasks';
// Updates are journaled as patches: the service copies a task (draftOf) and its history before it changes them.
export const tasksCollection: CollectionSpec = { name: TASKS, unique: [], patches: true };
