import type { CentralFeature } from '../api/feature.js';
import { serviceStatusHandler } from './agent-events.js';
import { serviceRegistry, servicesCollection, type RegistryOptions } from './registry.js';
import { registerServiceRoutes } from './routes.js';

/** The service registry: `/api/v1/services`, TTL health, blocking queries, `wait`. */
export function servicesFeature(opts: RegistryOptions = {}): CentralFeature {
  return {
    name: 'services',
    collections: [servicesCollection],
    eventHandlers: (deps) => ({ 'service-status': serviceStatusHandler(deps, deps.logger) }),
    routes: (app, deps) => registerServiceRoutes(app, deps, serviceRegistry(deps, opts)),
    attach: ({ deps }) => {
      const reg = serviceRegistry(deps, opts);
      reg.start();
      return () => reg.stop();
    },
  };
}
