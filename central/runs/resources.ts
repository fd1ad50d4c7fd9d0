import type { CollectionSpec } from '../store/types.js';

/** Workflow runs (central/runs/state-machine.ts RunDoc). */
export const RUNS = 'runs';
export const runsCollection: CollectionSpec = { name: RUNS, unique: [] };
