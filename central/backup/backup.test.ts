import { describe, expect, it } from 'vitest';
import { InvalidError } from '../../shared/errors/domain-errors.js';
import { ALL_COLLECTIONS } from '../all-collections.test-support.js';
import { MemoryStore } from '../store/memory-store.js';
import { SCHEMA_VERSION } from '../store/migrations.js';
import { BACKUP_FORMAT, readBackup, restoreStore, snapshotStore } from './backup.js';

describe('backup documents', () => {
  it('snapshot → text → restore gives the same documents in an empty store, and refuses a store that holds anything', async () => {
    const a = new MemoryStore(ALL_COLLECTIONS);
    await a.commit([
      { type: 'put', collection: 'sites', doc: { id: 's1', name: 'dc1' } },
      { type: 'put', collection: 'machines', doc: { id: 'm1', name: 'm1', site: 'dc1', macs: ['52:54:00:00:00:01'], state: 'ready' } },
    ]);
    const b = readBackup(JSON.stringify(snapshotStore(a)));
    const c = new MemoryStore(ALL_COLLECTIONS);
    expect(await restoreStore(c, b)).toBe(2);
    expect(c.get('machines', 'm1')).toEqual(a.get('machines', 'm1'));
    expect(c.findUnique('machines', 'mac', '52:54:00:00:00:01')?.id).toBe('m1');
    await expect(restoreStore(c, b)).rejects.toThrow(/not empty \(.*machines: 1/);
  });

  it('migrates documents of an older schema version and refuses a newer one', () => {
    const old = { format: BACKUP_FORMAT, schemaVersion: 1, createdAt: '2026-01-01T00:00:00Z', collections: { machines: [{ id: 'm1', name: 'm1', bootState: 'installed' }] } };
    const b = readBackup(JSON.stringify(old));
    expect(b.schemaVersion).toBe(SCHEMA_VERSION);
    expect(b.collections.machines![0]).toMatchObject({ state: 'deployed' });
    expect(() => readBackup(JSON.stringify({ ...old, schemaVersion: SCHEMA_VERSION + 1 }))).toThrow(InvalidError);
    expect(() => readBackup('not json')).toThrow(/not a backup file/);
  });
});
