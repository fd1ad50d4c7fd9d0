import { z } from 'zod';
import { ConflictError, InvalidError } from '../../shared/errors/domain-errors.js';
import { SCHEMA_VERSION, migrate } from '../store/migrations.js';
import type { Doc, Store } from '../store/types.js';

export const BACKUP_FORMAT = 'underlay-central-backup';

/** Files of the data directory a backup carries (the central's identity): agents pin the CA and the signing key. */
export const IDENTITY_FILES = ['ca.pem', 'ca.key', 'signing.key', 'pki-seal.key', 'admin.token'] as const;

export const Backup = z.object({
  format: z.literal(BACKUP_FORMAT),
  /** The store schema version the documents are in (restore migrates older ones, refuses newer ones). */
  schemaVersion: z.number().int().min(0),
  createdAt: z.string(),
  /** Every collection's documents, at one instant. */
  collections: z.record(z.string(), z.array(z.object({ id: z.string() }).passthrough())),
  /** The identity files of the data dir (added by `underlay central backup` on the central's host). */
  files: z.record(z.string(), z.string()).optional(),
});
export type Backup = z.infer<typeof Backup>;

/**
 * Every document of every collection, read in one synchronous pass: no write lands in between, so the
 * backup is one consistent instant of a serving central (whatever the store, its documents are read
 * from the replica's memory).
 */
export function snapshotStore(store: Store, now = new Date()): Backup {
  const collections: Record<string, Doc[]> = {};
  for (const name of Object.keys(store.counts())) collections[name] = store.list(name).items.map((d) => ({ ...d }));
  return { format: BACKUP_FORMAT, schemaVersion: SCHEMA_VERSION, createdAt: now.toISOString(), collections };
}

/** Parses a backup file's text with clear errors; migrates documents of an older schema version. */
export function readBackup(text: string): Backup {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InvalidError(`not a backup file: ${(e as Error).message}`);
  }
  const parsed = Backup.safeParse(json);
  if (!parsed.success) throw new InvalidError(`not an Underlay central backup (${z.prettifyError(parsed.error).split('\n')[0]})`);
  const b = parsed.data;
  if (b.schemaVersion > SCHEMA_VERSION) throw new InvalidError(`the backup has schema version ${b.schemaVersion}, newer than this central (${SCHEMA_VERSION}): restore it with the release that made it, or a newer one`);
  const { snapshot } = migrate({ schemaVersion: b.schemaVersion, journalGeneration: 0, collections: b.collections as Record<string, Doc[]> });
  return { ...b, schemaVersion: snapshot.schemaVersion, collections: snapshot.collections };
}

/** Writes a backup's documents into an empty store, in commits of `batch` documents. Refuses a store that holds anything. */
export async function restoreStore(store: Store, b: Backup, batch = 1000): Promise<number> {
  const held = Object.entries(store.counts()).filter(([, n]) => n > 0);
  if (held.length > 0) throw new ConflictError(`the target store is not empty (${held.map(([c, n]) => `${c}: ${n}`).join(', ')}); restore only into an empty one`);
  const ops = Object.entries(b.collections).flatMap(([collection, docs]) => docs.map((doc) => ({ type: 'put' as const, collection, doc: doc as Doc })));
  for (let i = 0; i < ops.length; i += batch) await store.commit(ops.slice(i, i + batch));
  return ops.length;
}
