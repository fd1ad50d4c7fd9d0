import { afterAll, beforeAll, describe } from 'vitest';
import { postgresReady, TestPostgres } from '../../../test/support/postgres.js';
import { CONFORMANCE_SPECS, storeConformance } from '../store-conformance.test-support.js';
import type { Store } from '../types.js';
import { PostgresStore } from './postgres-store.js';

const ready = postgresReady('PostgresStore conformance');
let cluster: TestPostgres;
beforeAll(async () => {
  if (ready) cluster = await TestPostgres.start();
});
afterAll(() => cluster?.stop());

const urlOf = new WeakMap<Store, string>();
const openAt = async (url: string) => {
  const s = await PostgresStore.open({ url, collections: CONFORMANCE_SPECS });
  urlOf.set(s, url);
  return s;
};

describe.skipIf(!ready)('PostgresStore', () => {
  storeConformance('PostgresStore', {
    open: async () => openAt(await cluster.createDatabase()),
    reopen: async (s) => {
      await s.close();
      return openAt(urlOf.get(s)!);
    },
  });
});
