import type { BootEnv } from '../../shared/bootenv/schema.js';
import { registerCrud } from '../api/crud.js';
import type { CentralFeature, StateContributor } from '../api/feature.js';
import type { CollectionSpec, Doc } from '../store/types.js';
import { LEASES, leaseEventHandler, registerLeaseRoutes } from './leases.js';
import { bootenvsResource, reservationsResource, subnetsResource, templatesResource } from './resources.js';

const byName = { field: 'name', values: (d: Doc) => [String(d.name)] };

export const BOOT_COLLECTIONS: CollectionSpec[] = [
  { name: 'subnets', unique: [byName] },
  {
    name: 'reservations',
    unique: [byName, { field: 'address', values: (d) => [`${String(d.site)}/${String(d.address)}`] }],
  },
  { name: 'bootenvs', unique: [byName] },
  { name: 'templates', unique: [byName] },
  { name: LEASES, unique: [] },
];

/** What each site's agent needs to boot its machines offline: subnets, reservations, boot envs, snippets. */
export const bootStateContributor: StateContributor = (site, store) => {
  const strip = ({ id: _i, createdAt: _c, updatedAt: _u, name: _n, site: _s, ...rest }: Doc) => rest;
  return {
    subnets: store.list('subnets', { where: { site } }).items.map(strip),
    reservations: store.list('reservations', { where: { site } }).items.map(strip),
    bootenvs: store.list<Doc & BootEnv>('bootenvs').items.map(({ id: _i, createdAt: _c, updatedAt: _u, ...b }) => b),
    templates: Object.fromEntries(store.list<Doc & { text: string }>('templates').items.map((t) => [String(t.name), t.text])),
  };
};

export const BOOT_STATE_COLLECTIONS = ['subnets', 'reservations', 'bootenvs', 'templates'];

/** Subnets, reservations, leases, boot environments and templates. */
export function bootFeature(): CentralFeature {
  return {
    name: 'boot',
    collections: BOOT_COLLECTIONS,
    stateContributors: [bootStateContributor],
    stateCollections: BOOT_STATE_COLLECTIONS,
    eventHandlers: (deps) => ({ lease: leaseEventHandler(deps.store, deps.logger) }),
    routes: (app, deps) => {
      registerCrud(app, deps, subnetsResource);
      registerCrud(app, deps, reservationsResource);
      registerCrud(app, deps, bootenvsResource);
      registerCrud(app, deps, templatesResource);
      registerLeaseRoutes(app, deps);
    },
  };
}
