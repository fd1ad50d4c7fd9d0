import { z } from 'zod';
import type { Machine } from '../../shared/api/resources.js';
import type { Logger } from '../../shared/log/logger.js';
import type { EventHandler } from '../api/feature.js';
import { MACHINES } from '../machines/resources.js';
import type { Store } from '../store/types.js';
import type { ServiceRegistry } from './registry.js';

const ServiceStatusEvent = z.object({
  service: z.string().min(1).max(128),
  member: z.string().min(1).max(256),
  status: z.enum(['passing', 'warning', 'critical']),
  machineId: z.string().min(1).max(64),
  note: z.string().max(4096).optional(),
});

/**
 * Health a site agent reports for its machines (a machine's runner or check calls the agent, which
 * forwards through its durable outbox). Accepted only for a member that runs on that very machine, at
 * that agent's site: a machine cannot speak for another.
 */
export function serviceStatusHandler(store: Store, registry: ServiceRegistry, logger: Logger): EventHandler {
  return async (agent, ev) => {
    const parsed = ServiceStatusEvent.safeParse(ev.data);
    if (!parsed.success) {
      logger.warn({ agent: agent.id }, 'malformed service-status event; ignored');
      return;
    }
    const { service, member, status, machineId, note } = parsed.data;
    const m = registry.get(service)?.members.find((x) => x.id === member);
    const machine = store.get<Machine>(MACHINES, machineId);
    if (!m || !machine || machine.site !== agent.site || m.machine !== machine.name) {
      logger.warn({ agent: agent.id, service, member, machine: machineId }, 'service-status for a member that is not on that machine of this site; ignored');
      return;
    }
    await registry.reportMemberStatus(service, member, status, note);
  };
}
