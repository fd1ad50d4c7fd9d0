import type { CentralFeature } from '../api/feature.js';
import { serviceKey } from '../api/services.js';
import { serviceStatusHandler } from './agent-events.js';
import { ServiceRegistry, servicesCollection, type RegistryOptions } from './registry.js';
import { registerServiceRoutes } from './routes.js';

/** The service registry of this central, for features that read or wait on services. */
export const SERVICE_REGISTRY = serviceKey<ServiceRegistry>('service-registry');

/** The service registry: `/api/v1/services`, TTL health, blocking queries, `wait`, and agents' `service-status` events. */
export function servicesFeature(opts: RegistryOptions = {}): CentralFeature {
  return {
    name: 'services',
    collections: [servicesCollection],
    setup: ({ deps, services }) => services.provide(SERVICE_REGISTRY, new ServiceRegistry(deps.store, { logger: deps.logger, ...opts })),
    eventHandlers: (deps, services) => ({ 'service-status': serviceStatusHandler(deps.store, services.get(SERVICE_REGISTRY), deps.logger) }),
    routes: (app, deps, services) => registerServiceRoutes(app, deps, services.get(SERVICE_REGISTRY)),
    attach: ({ services }) => {
      const reg = services.get(SERVICE_REGISTRY);
      reg.start();
      return () => reg.stop();
    },
  };
}
