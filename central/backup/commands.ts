import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiClient } from '../../shared/client/api-client.js';
import { writeFileDurableSync } from '../../shared/fs/durable.js';
import { silentLogger, type Logger } from '../../shared/log/logger.js';
import { isPostgresUrl } from '../store/postgres/url.js';
import { openStore } from '../store/open-store.js';
import type { CollectionSpec } from '../store/types.js';
import { IDENTITY_FILES, readBackup, restoreStore, type Backup } from './backup.js';

/**
 * `underlay central backup FILE`: the store as the running central sees it at one instant (GET
 * /api/v1/backup) plus the identity files of its data dir, written durably with mode 0600 (it holds the
 * CA key and the task-signing key). Returns what it wrote.
 */
export async function backupCentral(client: ApiClient, dataDir: string, file: string): Promise<{ documents: number; files: string[] }> {
  const b = await client.call<Backup>('GET', '/api/v1/backup');
  const files: Record<string, string> = {};
  for (const f of IDENTITY_FILES) if (existsSync(join(dataDir, f))) files[f] = readFileSync(join(dataDir, f), 'utf8');
  if (!files['ca.key'] || !files['signing.key']) throw new Error(`${dataDir} has no ca.key or signing.key: run the backup on the central's host with --data (env UNDERLAY_DATA) naming its data dir`);
  writeFileDurableSync(file, JSON.stringify({ ...b, files }), 0o600);
  return { documents: Object.values(b.collections).reduce((n, d) => n + d.length, 0), files: Object.keys(files) };
}

/**
 * `underlay central restore FILE`: into an empty data dir (refuses one that holds anything), or into an
 * empty PostgreSQL database (`--store postgres://…`, the identity files still go to the data dir).
 * Documents of an older schema version are migrated; a newer one is refused.
 */
export async function restoreCentral(o: { file: string; dataDir: string; storeUrl?: string; collections: CollectionSpec[]; logger?: Logger }): Promise<{ documents: number; files: string[] }> {
  const b = readBackup(readFileSync(o.file, 'utf8'));
  if (existsSync(o.dataDir) && readdirSync(o.dataDir).length > 0) throw new Error(`data dir ${o.dataDir} is not empty: restore only into an empty (or new) directory`);
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore({ ...(isPostgresUrl(o.storeUrl) ? { url: o.storeUrl } : {}), dir: o.dataDir, collections: o.collections, logger: o.logger ?? silentLogger });
  let documents: number;
  try {
    documents = await restoreStore(store, b);
  } finally {
    await store.close();
  }
  const files = Object.entries(b.files ?? {}).filter(([f]) => (IDENTITY_FILES as readonly string[]).includes(f));
  for (const [f, text] of files) writeFileDurableSync(join(o.dataDir, f), text, f.endsWith('.pem') ? 0o644 : 0o600);
  return { documents, files: files.map(([f]) => f) };
}
