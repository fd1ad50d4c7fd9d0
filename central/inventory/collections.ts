import type { CollectionSpec, Doc } from '../store/types.js';

const byName = { field: 'name', values: (d: Doc) => [String(d.name)] };

/** Collection names and their unique indexes. Later features add theirs here. */
export const COLLECTIONS: CollectionSpec[] = [
  { name: 'sites', unique: [byName] },
  { name: 'profiles', unique: [byName] },
  { name: 'params', unique: [byName] },
  {
    name: 'machines',
    unique: [
      byName,
      { field: 'mac', values: (d) => ((d.macs as string[] | undefined) ?? []).map((m) => m.toLowerCase()) },
    ],
  },
  { name: 'tokens', unique: [] },
];
