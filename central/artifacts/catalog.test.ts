import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import { ConflictError, InvalidError, NotFoundError } from '../../shared/errors/domain-errors.js';
import { FileStore } from '../store/file-store.js';
import { ARTIFACTS, ArtifactCatalog, type ArtifactDoc } from './catalog.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const RAW = 'c'.repeat(64);
const image = { format: 'zstd' as const, rawSha256: RAW, rawSize: 4096 };

let dir: string;
let store: FileStore;
let catalog: ArtifactCatalog;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'catalog-'));
  store = await FileStore.open({ dir, collections: [{ name: ARTIFACTS, unique: [] }, { name: 'machines', unique: [] }], logger: silentLogger });
  catalog = new ArtifactCatalog(store);
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ArtifactCatalog', () => {
  it('records an image as an ImageRef-shaped artifact and finds it by name', async () => {
    await catalog.record({ sha256: A, size: 100, urls: [], name: 'debian-12', image });
    expect(catalog.image('debian-12')).toEqual({ name: 'debian-12', sha256: A, size: 100, ...image });
    expect(store.get<ArtifactDoc>(ARTIFACTS, A)).toMatchObject({ name: 'debian-12', image });
    expect(catalog.images().map((i) => i.name)).toEqual(['debian-12']);
    expect(() => catalog.image('nope')).toThrow(NotFoundError);
  });

  it('is idempotent for the same bytes and name; another name for other bytes needs replace', async () => {
    const first = await catalog.record({ sha256: A, size: 100, urls: [], name: 'debian-12', image });
    const again = await catalog.record({ sha256: A, size: 100, urls: [], name: 'debian-12', image });
    expect(again).toEqual(first);
    await expect(catalog.record({ sha256: B, size: 50, urls: [], name: 'debian-12', image })).rejects.toThrow(ConflictError);
    expect(catalog.image('debian-12').sha256).toBe(A);
    await catalog.record({ sha256: B, size: 50, urls: [], name: 'debian-12', image, replace: true });
    expect(catalog.image('debian-12').sha256).toBe(B);
    // The old bytes stay (content-addressed, maybe still being deployed), no longer named.
    expect(store.get<ArtifactDoc>(ARTIFACTS, A)).toMatchObject({ sha256: A });
    expect(store.get<ArtifactDoc>(ARTIFACTS, A)?.name).toBeUndefined();
    expect(catalog.images()).toHaveLength(1);
  });

  it('refuses the same bytes under a second name, or with other raw metadata, without replace', async () => {
    await catalog.record({ sha256: A, size: 100, urls: [], name: 'debian-12', image });
    await expect(catalog.record({ sha256: A, size: 100, urls: [], name: 'other', image })).rejects.toThrow(/already stored as "debian-12"/);
    await expect(catalog.record({ sha256: A, size: 100, urls: [], name: 'debian-12', image: { ...image, rawSize: 8192 } })).rejects.toThrow(ConflictError);
  });

  it('two racing pushes of one name to different bytes: exactly one wins', async () => {
    const results = await Promise.allSettled([
      catalog.record({ sha256: A, size: 1, urls: [], name: 'race', image }),
      catalog.record({ sha256: B, size: 1, urls: [], name: 'race', image }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(store.list<ArtifactDoc>(ARTIFACTS, { where: { name: 'race' } }).total).toBe(1);
  });

  it('refuses bad names and an image without a name', () => {
    expect(() => catalog.check({ sha256: A, urls: [], image })).toThrow(InvalidError);
    expect(() => catalog.check({ sha256: A, urls: [], name: '../x', image })).toThrow(InvalidError);
    expect(() => catalog.check({ sha256: A, urls: [], name: 'a/b', image })).toThrow(InvalidError);
    expect(() => catalog.check({ sha256: A, urls: [], name: '../etc' })).toThrow(InvalidError);
    expect(() => catalog.check({ sha256: A, urls: [], name: 'discovery/vmlinuz' })).not.toThrow();
  });

  it('deletes an image nothing uses; refuses one a machine names', async () => {
    await catalog.record({ sha256: A, size: 1, urls: [], name: 'used', image });
    await catalog.record({ sha256: B, size: 1, urls: [], name: 'free', image });
    await store.put('machines', { id: 'm1', name: 'web1', deploy: { image: 'used' } });
    await expect(catalog.deleteImage('used')).rejects.toThrow(/in use by machine web1/);
    expect(catalog.image('used').sha256).toBe(A);
    expect((await catalog.deleteImage('free')).sha256).toBe(B);
    expect(store.get(ARTIFACTS, B)).toBeUndefined();
    await expect(catalog.deleteImage('free')).rejects.toThrow(NotFoundError);
  });
});
