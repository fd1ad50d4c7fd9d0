import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../central/support.js';
import { startInProcessCentral, type InProcessCentral } from '../central/in-process.js';

/** What central replicas must share besides the database: the CA, the task-signing key (and the admin token, for tests). */
export const SHARED_IDENTITY_FILES = ['ca.pem', 'ca.key', 'signing.key', 'admin.token'];

/** Copies the first replica's identity into a new data directory (what docs/ha.md tells operators to do); returns the new dir's parent. */
export function cloneIdentity(fromDataDir: string): string {
  const dir = tempDir('underlay-replica-');
  mkdirSync(join(dir, 'data'), { mode: 0o700 });
  for (const f of SHARED_IDENTITY_FILES) copyFileSync(join(fromDataDir, f), join(dir, 'data', f));
  return dir;
}

/** `n` in-process central replicas on the database at `store` (the first creates the identity the others copy). */
export async function startReplicas(store: string, n = 2): Promise<InProcessCentral[]> {
  const first = await startInProcessCentral({ options: { store } });
  const out = [first];
  for (let i = 1; i < n; i++) out.push(await startInProcessCentral({ dir: cloneIdentity(join(first.dir, 'data')), options: { store } }));
  return out;
}
