import type { Machine } from '../../shared/api/resources.js';
import { matchesSelector, parseSelector } from '../../shared/api/selector.js';
import type { Stage, Wait } from '../../shared/api/workflows.js';
import { MACHINES } from '../machines/resources.js';
import { SERVICES } from '../services/registry.js';
import type { Doc, Store } from '../store/types.js';
import type { GateRec } from './state-machine.js';
import { machineParams } from './scope.js';

/** What a waiting gate says it waits for. */
export function describeWait(wait: Wait): string {
  if ('service' in wait) return `service ${wait.service} to have ${wait.passing} passing members`;
  if ('param' in wait) return `param ${wait.param} to be set`;
  return `every machine matching ${wait.machines} to be ${wait.state}`;
}

export interface GateContext {
  store: Store;
}

/**
 * Passing members of a service as stored. Read from the store, not the registry's memory: the store
 * announces a change before the registry's own map follows it, and a gate woken by that change must see it.
 */
export function passingMembers(service: { members?: { status?: string }[] } | undefined): number {
  return service?.members?.filter((m) => m.status === 'passing').length ?? 0;
}

/** Whether the wait holds now for this machine. */
export function waitHolds(ctx: GateContext, wait: Wait, machineId: string): boolean {
  if ('service' in wait) return passingMembers(ctx.store.findUnique<Doc & { members?: { status?: string }[] }>(SERVICES, 'name', wait.service)) >= wait.passing;
  if ('param' in wait) {
    const m = ctx.store.get<Machine>(MACHINES, machineId);
    const v = m ? machineParams(ctx.store, m)[wait.param] : undefined;
    return v !== undefined && v !== null && v !== '';
  }
  const sel = parseSelector(wait.machines);
  const matching = ctx.store.list<Machine>(MACHINES).items.filter((m) => matchesSelector(sel, m));
  return matching.length > 0 && matching.every((m) => m.state === wait.state);
}

/** A stage's gate now: open, or what it still waits for (the wait first, then an approval). */
export function evaluateGate(ctx: GateContext, stage: Stage, gate: GateRec, machineId: string): { open: true } | { open: false; waitingFor: string } {
  if (stage.wait && !waitHolds(ctx, stage.wait, machineId)) return { open: false, waitingFor: describeWait(stage.wait) };
  const approvedAt = gate.state === 'closed' || gate.state === 'waiting' ? gate.approvedAt : undefined;
  if (stage.approval && !approvedAt) return { open: false, waitingFor: 'an approval (underlay runs continue RUN)' };
  return { open: true };
}
