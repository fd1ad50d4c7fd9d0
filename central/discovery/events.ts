import { HardwareFacts } from '../../shared/api/facts.js';
import { issuesToDetails } from '../../shared/api/issues.js';
import type { Machine } from '../../shared/api/resources.js';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { EVENTS } from '../agents/collections.js';
import type { Logger } from '../../shared/log/logger.js';
import type { EventHandler } from '../api/feature.js';
import { MACHINES } from '../machines/resources.js';
import { SITES } from '../sites/resources.js';
import type { Store } from '../store/types.js';

const DiscoveryEvent = z.object({
  machineId: z.string().min(1).max(64),
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
  facts: HardwareFacts,
});
const InstallDone = z.object({ machineId: z.string().min(1).max(64), mac: z.string().optional() });

const normMac = (m: unknown) => (typeof m === 'string' ? m.toLowerCase() : '');

/**
 * Discovery: the central creates or updates the machine, matched by MAC or by system UUID — never a
 * duplicate on rediscovery — and stores its facts. A new machine takes the id the agent proposed, so
 * the discovery image can address tasks to it before the central's state reaches the agent.
 */
export function discoveryHandlers(store: Store, logger: Logger): Record<string, EventHandler> {
  const save = async (doc: Machine) => {
    await store.put(MACHINES, doc);
  };
  return {
    discovery: async (agent, ev) => {
      const parsed = DiscoveryEvent.safeParse(ev.data);
      if (!parsed.success) {
        // Paths and messages only: a machine's values are never echoed into the log.
        logger.warn({ agent: agent.id, problems: issuesToDetails(parsed.error.issues).slice(0, 10) }, 'malformed discovery event; ignored');
        return;
      }
      const { machineId, mac, facts } = parsed.data;
      const uuid = facts.system?.uuid ?? undefined;
      const serial = facts.system?.serial ?? undefined;
      const nicMacs = (facts.nics ?? []).map((n) => normMac(n.mac)).filter((m) => /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m));
      // The discovering agent's site bounds every match: a machine of another site is never touched.
      const here = (m: Machine | undefined) => (m && m.site === agent.site ? m : undefined);
      const byMac = store.findUnique<Machine>(MACHINES, 'mac', mac);
      const byId = store.get<Machine>(MACHINES, machineId);
      const byUuid = uuid ? store.list<Machine>(MACHINES, { where: { uuid, site: agent.site }, limit: 1 }).items.find((m) => m.site === agent.site) : undefined;
      const elsewhere = [byMac, byId].find((m) => m && m.site !== agent.site);
      const existing = here(byMac) ?? byUuid ?? here(byId);
      if (elsewhere && (!existing || elsewhere === byMac)) {
        // Refused (docs/decisions.md): MACs are unique in the store, and a machine that physically moved
        // is moved by an operator (PATCH its site, or delete it at the old site), never by a discovery post.
        logger.warn({ agent: agent.id, site: agent.site, mac, otherSite: elsewhere.site, machine: elsewhere.id }, 'discovery claims a machine (MAC or id) of another site; refused, nothing changed');
        await store.put(EVENTS, { id: randomUUID(), agent: agent.id, site: agent.site, kind: 'discovery-refused', data: { mac, machineId, reason: 'claimed by a machine of another site' }, at: new Date().toISOString(), receivedAt: new Date().toISOString() });
        return;
      }
      const now = new Date().toISOString();
      // Every MAC the machine has, except ones another machine already claims.
      const macsFor = (own: string[], id: string) => {
        const all = [...new Set([...own, mac, ...nicMacs])];
        return all.filter((m) => {
          const holder = store.findUnique<Machine>(MACHINES, 'mac', m);
          return !holder || holder.id === id;
        });
      };
      if (existing) {
        const next: Machine = {
          ...existing,
          macs: macsFor(existing.macs, existing.id),
          facts,
          ...(uuid ? { uuid } : {}),
          ...(serial ? { serial } : {}),
          servedBy: agent.id,
          updatedAt: now,
        };
        await save(next);
        logger.info({ machine: existing.name, mac, agent: agent.id }, 'machine rediscovered; facts updated');
        return;
      }
      if (!store.findUnique(SITES, 'name', agent.site)) {
        logger.warn({ site: agent.site }, 'discovery from a site that no longer exists; ignored');
        return;
      }
      let name = `m-${mac.replace(/:/g, '')}`;
      for (let i = 2; store.findUnique(MACHINES, 'name', name); i++) name = `m-${mac.replace(/:/g, '')}-${i}`;
      const doc: Machine = {
        id: machineId,
        name,
        site: agent.site,
        macs: macsFor([], machineId),
        ...(uuid ? { uuid } : {}),
        ...(serial ? { serial } : {}),
        profiles: [],
        params: {},
        facts,
        bootenv: 'discovery',
        state: 'discovered', // central/lifecycle moves it on (ready once its facts are in)
        netboot: true,
        servedBy: agent.id,
        createdAt: now,
        updatedAt: now,
      };
      await save(doc);
      logger.info({ machine: name, mac, agent: agent.id }, 'new machine discovered');
    },
    'install-done': async (agent, ev) => {
      const parsed = InstallDone.safeParse(ev.data);
      if (!parsed.success) return;
      const m = store.get<Machine>(MACHINES, parsed.data.machineId);
      if (!m || m.site !== agent.site) return;
      await save({ ...m, bootenv: 'local', netboot: false, servedBy: agent.id, updatedAt: new Date().toISOString() }); // the lifecycle records `deployed`
      logger.info({ machine: m.name }, 'install succeeded: machine switched to local boot, netboot disallowed');
    },
    'render-error': async (agent, ev) => {
      // Only where it failed: a render error's text can quote the values it was rendering (secrets
      // included), so the reason stays in the agent's own log.
      const d = (ev.data ?? {}) as { mac?: unknown; path?: unknown };
      const short = (v: unknown) => (typeof v === 'string' ? v.slice(0, 128) : undefined);
      logger.error({ agent: agent.id, site: agent.site, mac: short(d.mac), path: short(d.path) }, 'an agent could not render boot configuration (details in the agent log)');
    },
  };
}
