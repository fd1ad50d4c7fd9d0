import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { FileStore } from './file-store.js';
import { CONFORMANCE_SPECS, storeConformance } from './store-conformance.test-support.js';
import type { Store } from './types.js';

const root = mkdtempSync(join(tmpdir(), 'file-store-conformance-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dirOf = new WeakMap<Store, string>();
const openAt = async (dir: string) => {
  const s = await FileStore.open({ dir, collections: CONFORMANCE_SPECS });
  dirOf.set(s, dir);
  return s;
};

storeConformance('FileStore', {
  open: () => openAt(join(root, `data-${++n}`)),
  reopen: async (s) => {
    await s.close();
    return openAt(dirOf.get(s)!);
  },
});
