import type { Logger } from '../../shared/log/logger.js';
import { FileStore } from './file-store.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { isPostgresUrl, redactUrl } from './postgres/url.js';
import type { CollectionSpec, Store } from './types.js';

export interface OpenStoreOptions {
  /** `postgres://…` (or `postgresql://…`): PostgreSQL shared by central replicas; unset: the embedded file store in `dir`. */
  url?: string;
  dir: string;
  collections: CollectionSpec[];
  logger: Logger;
  onCommit?: (seconds: number, records: number) => void;
}

/** The central's store: the file store in the data directory by default, PostgreSQL when `--store postgres://…`. */
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  if (opts.url !== undefined && opts.url !== '' && !isPostgresUrl(opts.url)) throw new Error(`--store: expected a postgres:// URL (or nothing for the embedded store in --data), got "${redactUrl(opts.url)}"`);
  if (isPostgresUrl(opts.url)) return PostgresStore.open({ url: opts.url, collections: opts.collections, logger: opts.logger, onCommit: opts.onCommit });
  return FileStore.open({ dir: opts.dir, collections: opts.collections, logger: opts.logger, onCommit: opts.onCommit });
}
