import type { Doc } from './types.js';

export interface Snapshot {
  schemaVersion: number;
  /** Journal generation whose records apply on top of this snapshot. */
  journalGeneration: number;
  collections: Record<string, Doc[]>;
}

/** The current schema version of the central's data file. */
export const SCHEMA_VERSION = 1;

/**
 * Migrations from version N to N+1, applied in order at start; the migrated snapshot is written back
 * before the central serves. Version 0 is the empty store.
 */
export const migrations: Record<number, (s: Snapshot) => Snapshot> = {
  0: (s) => ({ ...s, schemaVersion: 1 }),
};

export function migrate(s: Snapshot): { snapshot: Snapshot; migrated: boolean } {
  if (s.schemaVersion > SCHEMA_VERSION) {
    throw new Error(`data file has schema version ${s.schemaVersion}, newer than this central (${SCHEMA_VERSION}); upgrade the central`);
  }
  let cur = s;
  let migrated = false;
  while (cur.schemaVersion < SCHEMA_VERSION) {
    const step = migrations[cur.schemaVersion];
    if (!step) throw new Error(`no migration from schema version ${cur.schemaVersion}`);
    cur = step(cur);
    migrated = true;
  }
  return { snapshot: cur, migrated };
}
