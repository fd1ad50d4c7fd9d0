import { MemoryStore } from './memory-store.js';
import { CONFORMANCE_SPECS, storeConformance } from './store-conformance.test-support.js';

storeConformance('MemoryStore', { open: async () => new MemoryStore(CONFORMANCE_SPECS) });
