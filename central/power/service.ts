import { POWER_STATE_EVENT, PowerStateEvent, type PowerAction, type PowerReading } from '../../shared/api/bmc.js';
import type { EventCause } from '../../shared/api/lifecycle.js';
import type { Machine } from '../../shared/api/resources.js';
import { ConflictError, NotFoundError } from '../../shared/errors/domain-errors.js';
import type { EventMsg } from '../../shared/protocol/messages.js';
import type { EventSource } from '../api/feature.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import { commitMachine } from '../lifecycle/machine-events.js';
import type { TaskDoc, TaskService } from '../tasks/service.js';

/** Power and boot-device tasks expire if the agent has not run them by then (a late power-on surprises). */
export const POWER_TASK_TTL = '10m';
/** A reading equal to the stored one is written again only when the stored one is older than this. */
export const POWER_READING_REFRESH_MS = 5 * 60_000;
const POWER_KINDS = new Set(['power', 'boot-device']);

export interface Caller {
  tokenId?: string;
}

/**
 * Power through the machine's agent: signs `power` and `boot-device` tasks, records each request and
 * each outcome as a machine event (the lifecycle's `machine-events`, state unchanged), and stores the
 * power readings the agent reports (`machines list/show` show `power`).
 */
export class PowerService {
  constructor(
    private readonly d: { lifecycle: () => Lifecycle; tasks: () => TaskService },
  ) {}

  private machine(id: string): Machine {
    const m = this.d.lifecycle().machine(id);
    if (!m) throw new NotFoundError(`machine "${id}" not found`);
    if (!m.bmc) throw new ConflictError(`machine "${m.name}" has no BMC: set its bmc (type, address, username) and the secret param bmc_password (or bmc.passwordParam)`, [{ path: 'bmc', message: 'not configured' }]);
    return m;
  }

  /** Signs a `power` task for the machine's agent and records the request. */
  power(machineId: string, action: PowerAction, caller: Caller, why = `power ${action} requested`): Promise<TaskDoc> {
    return this.request(machineId, 'power', { action }, caller, why);
  }

  /** Signs a `boot-device` task for the machine's agent and records the request. */
  bootDevice(machineId: string, device: 'pxe' | 'disk', persistent: boolean, caller: Caller, why = `boot device ${device} (${persistent ? 'persistent' : 'once'}) requested`): Promise<TaskDoc> {
    return this.request(machineId, 'boot-device', { device, persistent }, caller, why);
  }

  private request(machineId: string, kind: 'power' | 'boot-device', payload: unknown, caller: Caller, why: string): Promise<TaskDoc> {
    const lc = this.d.lifecycle();
    return lc.exclusive(machineId, async () => {
      const m = this.machine(machineId);
      const t = await this.d.tasks().create({ site: m.site, machine: m.id, kind, payload, ttl: POWER_TASK_TTL });
      await this.note(m, { kind: 'action', action: kind === 'power' ? `power ${(payload as { action: string }).action}` : 'boot-device', ...(caller.tokenId ? { tokenId: caller.tokenId } : {}), taskId: t.id }, why);
      return t;
    });
  }

  /** A power or boot-device task finished: its outcome is an event of the machine. */
  async onTaskFinished(t: TaskDoc): Promise<void> {
    if (!POWER_KINDS.has(t.kind) || !t.machine) return;
    const lc = this.d.lifecycle();
    await lc.exclusive(t.machine, async () => {
      const m = lc.machine(t.machine!);
      if (!m) return;
      const what = t.kind === 'power' ? `power ${(t.payload as { action?: string }).action}` : `boot device ${(t.payload as { device?: string }).device}`;
      await this.note(m, { kind: 'task', taskId: t.id, taskKind: t.kind, taskState: t.state }, `${what}: ${t.state}${t.output ? ` (${t.output})` : t.reason ? ` (${t.reason})` : ''}`);
    });
  }

  /** The agent's readings (a poll round or an action's result), for machines of its own site only. */
  async onReadings(agent: EventSource, ev: EventMsg): Promise<void> {
    const parsed = PowerStateEvent.safeParse(ev.data);
    const lc = this.d.lifecycle();
    if (!parsed.success) {
      // Dropped, not thrown: a redelivery would be just as malformed.
      lc.logger.warn({ agent: agent.id, event: ev.id, issue: parsed.error.issues[0]?.message }, `malformed ${POWER_STATE_EVENT} event ignored`);
      return;
    }
    for (const r of parsed.data.readings) {
      await lc.exclusive(r.machineId, async () => {
        const m = lc.machine(r.machineId);
        if (!m || m.site !== agent.site) return;
        const reading: PowerReading = { state: r.state, readAt: r.readAt, ...(r.error ? { error: r.error } : {}) };
        if (!isNewer(m.power, reading)) return;
        await lc.update(m, { power: reading });
      });
    }
  }

  private async note(m: Machine, cause: EventCause, reason: string): Promise<void> {
    const lc = this.d.lifecycle();
    const next = { ...m, updatedAt: new Date().toISOString() };
    await commitMachine(lc.opts, m, next, { from: m.state, to: m.state, cause, reason }, lc.opts.eventsPerMachine);
  }
}

/** Whether a reading should replace the stored one: newer and different, or the stored one is stale. */
function isNewer(old: PowerReading | undefined, r: PowerReading): boolean {
  if (!old) return true;
  if (r.readAt <= old.readAt) return false;
  if (old.state !== r.state || old.error !== r.error) return true;
  return Date.parse(r.readAt) - Date.parse(old.readAt) >= POWER_READING_REFRESH_MS;
}
