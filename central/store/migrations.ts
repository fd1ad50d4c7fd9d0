import type { Doc } from './types.js';

export interface Snapshot {
  schemaVersion: number;
  /** Journal generation whose records apply on top of this snapshot. */
  journalGeneration: number;
  collections: Record<string, Doc[]>;
}

/** The current schema version of the central's data file. */
export const SCHEMA_VERSION = 2;

/**
 * Migrations from version N to N+1, applied in order at start; the migrated snapshot is written back
 * before the central serves. Version 0 is the empty store.
 */
export const migrations: Record<number, (s: Snapshot) => Snapshot> = {
  0: (s) => ({ ...s, schemaVersion: 1 }),
  // Issue 12: the PATCHable `bootState` becomes the lifecycle `state` (central/lifecycle).
  1: (s) => ({
    ...s,
    schemaVersion: 2,
    collections: Object.fromEntries(Object.entries(s.collections).map(([name, docs]) => [name, docs.map((d) => recordMigrations[1]!(name, d))])),
  }),
};

/** Old boot states → lifecycle states: new → discovered (ready if it has facts), provisioning → deploying, installed/local → deployed. */
const FROM_BOOT_STATE: Record<string, string> = { new: 'discovered', discovered: 'ready', provisioning: 'deploying', installed: 'deployed', local: 'deployed', failed: 'failed' };

function machineStateFromBootState(m: Doc): Doc {
  const { bootState, ...rest } = m;
  if (typeof rest.state === 'string') return rest;
  const hasFacts = !!rest.facts && typeof rest.facts === 'object' && Object.keys(rest.facts).length > 0;
  let state = FROM_BOOT_STATE[String(bootState)] ?? 'discovered';
  if (state === 'ready' && !hasFacts) state = 'discovered';
  if (state === 'discovered' && hasFacts) state = 'ready';
  return { ...rest, state, ...(state === 'failed' ? { stateReason: 'failed before the lifecycle existed (migrated boot state)' } : {}) };
}

/**
 * Per-document migrations (version N → N+1) for journal records an older version wrote after its last
 * snapshot: they replay on top of the migrated snapshot and must migrate the same way.
 */
const recordMigrations: Record<number, (collection: string, d: Doc) => Doc> = {
  1: (collection, d) => (collection === 'machines' ? machineStateFromBootState(d) : collection === 'group-rules' ? ruleOnState(d) : d),
};

/** Group rules keyed or conditioned on `bootState` now read `state` (their values are the operator's to revisit). */
function ruleOnState(d: Doc): Doc {
  const fix = (c: unknown) => (c && typeof c === 'object' && (c as { path?: unknown }).path === 'bootState' ? { ...(c as object), path: 'state' } : c);
  return { ...d, ...(d.key === 'bootState' ? { key: 'state' } : {}), ...(d.when !== undefined ? { when: Array.isArray(d.when) ? d.when.map(fix) : fix(d.when) } : {}) };
}

export function migrateRecord(fromVersion: number, collection: string, doc: Doc): Doc {
  let cur = doc;
  for (let v = fromVersion; v < SCHEMA_VERSION; v++) cur = recordMigrations[v]?.(collection, cur) ?? cur;
  return cur;
}

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
