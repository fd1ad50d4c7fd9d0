import { MACHINES } from '../machines/resources.js';
import { z } from 'zod';
import { HardwareFacts } from '../../shared/api/facts.js';
import { issuesToDetails } from '../../shared/api/issues.js';
import { OsReport } from '../../shared/api/os-report.js';
import type { Machine } from '../../shared/api/resources.js';
import { LeaseEventSchema } from '../../shared/dhcp/config.js';
import type { EventMsg } from '../../shared/protocol/messages.js';
import type { EventSource } from '../api/feature.js';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import type { TaskDoc } from '../tasks/service.js';
import { discoveryAddresses, osAddresses, removeAddress, replaceSource, sameAddresses } from './addresses.js';
import type { Lifecycle } from './lifecycle.js';
import { canFire } from './state-machine.js';

/** What the lifecycle reads of a discovery event (the discovery handler validated and stored it first). */
const DiscoveryReport = z.object({ machineId: z.string().min(1).max(64), mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/), facts: HardwareFacts });
const InstallDone = z.object({ machineId: z.string().min(1).max(64) });

const hasFacts = (m: Machine) => !!m.facts && Object.keys(m.facts).length > 0;

/** The machine of the agent's own site (a report never touches another site's machine). */
function ofSite(lc: Lifecycle, agent: EventSource, m: Machine | undefined): Machine | undefined {
  return m && m.site === agent.site ? m : undefined;
}

/** A report that raced an operator's action finds the machine elsewhere: logged, not an error for the agent. */
async function tolerant(lc: Lifecycle, what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof ConflictError)) throw e; // storage failures: the agent's outbox redelivers
    lc.logger.info({ what, reason: e.message }, 'report did not change the lifecycle');
  }
}

const agentCause = (agent: EventSource, ev: EventMsg) => ({ kind: 'agent-event' as const, event: ev.kind, agent: agent.id, eventId: ev.id });

/**
 * A deploy, release or rescue task reached a final state. A failed (rejected, expired, cancelled)
 * image-deploy or release task fails the machine with the task's reason. A succeeded image-deploy keeps
 * it deploying (it reboots into its disk; the installed OS's report finishes it), unless that report
 * already came; a succeeded release keeps it releasing until discovery sees it again.
 */
export function onTaskFinished(lc: Lifecycle, t: TaskDoc): Promise<void> {
  if (!t.machine || (t.kind !== 'image-deploy' && t.kind !== 'release')) return Promise.resolve();
  const machineId = t.machine;
  return lc.exclusive(machineId, () =>
    tolerant(lc, `task ${t.id}`, async () => {
      const m = lc.machine(machineId);
      if (!m || m.deployment?.taskId !== t.id) return; // an older action's task: the machine moved on
      const cause = { kind: 'task' as const, taskId: t.id, taskKind: t.kind, taskState: t.state };
      const failing = t.kind === 'image-deploy' ? 'deploy-failed' : 'release-failed';
      if (t.state !== 'succeeded') {
        if (canFire(m.state, failing)) await lc.fire(m, failing, cause, { reason: `${t.kind} task ${t.state}: ${t.reason ?? 'no reason given'}` });
        return;
      }
      if (t.kind === 'image-deploy' && m.state === 'deploying') {
        // The agent turned netboot off when it heard the success (agent/tasks/deploy-effects.ts); the
        // record says so too, or the agent's override would be the only thing keeping the machine off the
        // network boot (and a replacement agent would boot the deployed machine into discovery).
        const change = { netboot: false };
        if (m.os?.deployTaskId === t.id) await lc.fire(m, 'os-reported', cause, { reason: 'image written; the installed OS had already reported', change });
        else await lc.update(m, { ...change, stateReason: 'image written and verified; waiting for the installed OS to report' });
      }
      if (t.kind === 'release' && m.state === 'releasing' && m.discoveredAt && m.discoveredAt >= m.deployment.startedAt) {
        await lc.fire(m, 'rediscovered', cause, { reason: 'released; discovery had already seen it' });
      }
    }),
  );
}

/**
 * The installed OS's runner started (`machine-os`): a deploying machine whose image-deploy succeeded
 * (or that names its deploy task) becomes deployed with its OS facts and addresses; a deployed
 * machine's addresses and OS facts are refreshed. Malformed reports are logged by path only.
 */
export async function onMachineOs(lc: Lifecycle, agent: EventSource, ev: EventMsg): Promise<void> {
  const parsed = OsReport.safeParse(ev.data);
  if (!parsed.success) {
    lc.logger.warn({ agent: agent.id, problems: issuesToDetails(parsed.error.issues).slice(0, 10).map((p) => p.path) }, 'malformed machine-os event; ignored');
    return;
  }
  const r = parsed.data;
  await lc.exclusive(r.machineId, () =>
    tolerant(lc, 'machine-os', async () => {
      const m = ofSite(lc, agent, lc.machine(r.machineId));
      if (!m) {
        lc.logger.warn({ agent: agent.id, site: agent.site }, 'machine-os event for a machine this agent\'s site does not have; ignored');
        return;
      }
      const now = new Date().toISOString();
      const os = { id: r.os.id, ...(r.os.versionId ? { versionId: r.os.versionId } : {}), ...(r.os.prettyName ? { prettyName: r.os.prettyName } : {}), kernel: r.kernel, ...(r.hostname ? { hostname: r.hostname } : {}), reportedAt: now, ...(r.deployTaskId ? { deployTaskId: r.deployTaskId } : {}) };
      const change = { os, addresses: replaceSource(m.addresses, 'os', osAddresses(r), now), servedBy: agent.id };
      if (m.state === 'deployed') {
        await lc.update(m, change);
        return;
      }
      if (m.state !== 'deploying') {
        lc.logger.info({ machine: m.name, state: m.state }, 'machine-os event for a machine that is not deploying or deployed; state unchanged');
        return;
      }
      const taskId = m.deployment?.taskId;
      const task = taskId ? lc.opts.tasks()?.get(taskId) : undefined;
      if (task?.state === 'succeeded') {
        // netboot off as in onTaskFinished: the task's success may have been recorded without it (a report
        // replayed from the agent's outbox after a central restart).
        await lc.fire(m, 'os-reported', agentCause(agent, ev), { reason: `${os.prettyName ?? os.id} reported in (kernel ${os.kernel})`, change: { ...change, netboot: false } });
      } else if (r.deployTaskId && r.deployTaskId === taskId) {
        // The OS this deploy wrote, reporting before the task's own success report arrived: wait for it.
        await lc.update(m, change);
      } else {
        lc.logger.warn({ machine: m.name }, 'machine-os event while the image-deploy task has not succeeded (an older OS booted?); state unchanged');
      }
    }),
  );
}

/**
 * A discovery report (after the discovery handler stored the facts): records the discovery addresses;
 * a discovered machine with facts becomes ready; a releasing machine whose release task succeeded
 * becomes ready (wiped and back in the runner environment).
 */
export async function onDiscovery(lc: Lifecycle, agent: EventSource, ev: EventMsg): Promise<void> {
  const parsed = DiscoveryReport.safeParse(ev.data);
  if (!parsed.success) return; // the discovery handler logged it
  const { mac } = parsed.data;
  const found = ofSite(lc, agent, lc.store.findUnique<Machine>(MACHINES, 'mac', mac));
  if (!found) return;
  await lc.exclusive(found.id, () =>
    tolerant(lc, 'discovery', async () => {
      const m = lc.machine(found.id);
      if (!m) return;
      const now = new Date().toISOString();
      const addresses = replaceSource(m.addresses, 'discovery', discoveryAddresses(parsed.data.facts), now);
      const change = { discoveredAt: now, addresses };
      if (m.state === 'discovered' && hasFacts(m)) {
        await lc.fire(m, 'facts', agentCause(agent, ev), { reason: 'hardware facts reported', change });
        return;
      }
      const releaseTask = m.state === 'releasing' && m.deployment?.taskId ? lc.opts.tasks()?.get(m.deployment.taskId) : undefined;
      if (releaseTask?.state === 'succeeded') await lc.fire(m, 'rediscovered', agentCause(agent, ev), { reason: 'released and discovered again', change });
      else await lc.update(m, change);
    }),
  );
}

/** An agent's lease event: the boot address of the machine with that MAC (added on lease, dropped on release or expiry). */
export async function onLease(lc: Lifecycle, agent: EventSource, ev: EventMsg): Promise<void> {
  const parsed = LeaseEventSchema.safeParse(ev.data);
  if (!parsed.success) return; // the lease handler logged it
  const l = parsed.data;
  const found = ofSite(lc, agent, lc.store.findUnique<Machine>(MACHINES, 'mac', l.mac.toLowerCase()));
  if (!found) return;
  await lc.exclusive(found.id, async () => {
    const m = lc.machine(found.id);
    if (!m) return;
    const addresses =
      l.type === 'lease' ? replaceSource(m.addresses, 'lease', [{ address: l.address, mac: l.mac.toLowerCase() }], new Date().toISOString()) : removeAddress(m.addresses, 'lease', l.address);
    if (!sameAddresses(addresses, m.addresses)) await lc.update(m, { addresses });
  });
}

/** An installer boot environment finished (`install-done`; the discovery handler switched it to local boot): deployed. */
export async function onInstallDone(lc: Lifecycle, agent: EventSource, ev: EventMsg): Promise<void> {
  const parsed = InstallDone.safeParse(ev.data);
  if (!parsed.success) return;
  await lc.exclusive(parsed.data.machineId, () =>
    tolerant(lc, 'install-done', async () => {
      const m = ofSite(lc, agent, lc.machine(parsed.data.machineId));
      if (m && canFire(m.state, 'installed')) await lc.fire(m, 'installed', agentCause(agent, ev), { reason: 'the installer reported success' });
    }),
  );
}
