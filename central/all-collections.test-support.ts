import { centralFeatures } from './features.js';
import { MemoryStore } from './store/memory-store.js';
import type { CollectionSpec } from './store/types.js';

/** Every collection of a production central (from central/features.ts). */
export const ALL_COLLECTIONS: CollectionSpec[] = centralFeatures().flatMap((f) => f.collections ?? []);

/** A store with every collection, in memory (for unit tests that need a store, not a data directory). */
export function memoryStore(): MemoryStore {
  return new MemoryStore(ALL_COLLECTIONS);
}
