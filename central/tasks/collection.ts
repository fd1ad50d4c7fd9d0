import type { CollectionSpec } from '../store/types.js';

/** Signed tasks and their history (central/tasks/service.ts). */
export const TASKS = 'tasks';
export const tasksCollection: CollectionSpec = { name: TASKS, unique: [] };
