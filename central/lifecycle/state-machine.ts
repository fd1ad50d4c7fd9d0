import type { MachineState } from '../../shared/api/lifecycle.js';
import { ConflictError } from '../../shared/errors/domain-errors.js';

/**
 * The machine lifecycle as an explicit transition table (ARCHITECTURE.md "A machine's life"). Pure: no
 * store, no clock. Actions (deploy, release, rescue) come from operators; the other triggers from what
 * the machine's agent reports (central/lifecycle/service.ts maps reports to them).
 */
export const TRIGGERS = {
  /** The discovery report brought hardware facts. */
  facts: { from: ['discovered'], to: 'ready' },
  deploy: { from: ['ready', 'failed'], to: 'deploying' },
  /** The image-deploy task failed, was rejected, expired or was cancelled. */
  'deploy-failed': { from: ['deploying'], to: 'failed' },
  /** The installed OS's runner reported in (`machine-os`). */
  'os-reported': { from: ['deploying'], to: 'deployed' },
  /** An installer boot environment reported `install-done` (installs outside the image deploy). */
  installed: { from: ['discovered', 'ready', 'deploying', 'failed'], to: 'deployed' },
  release: { from: ['deployed', 'failed', 'rescue'], to: 'releasing' },
  /** The release task failed, was rejected, expired or was cancelled. */
  'release-failed': { from: ['releasing'], to: 'failed' },
  /** After a successful release the machine was discovered again (wiped, back in the runner environment). */
  rediscovered: { from: ['releasing'], to: 'ready' },
  /** Boot the runner environment without touching disks. */
  rescue: { from: ['discovered', 'ready', 'deployed', 'failed'], to: 'rescue' },
} as const satisfies Record<string, { from: readonly MachineState[]; to: MachineState }>;

export type Trigger = keyof typeof TRIGGERS;

/** Whether `trigger` may fire in `state`. */
export function canFire(state: MachineState, trigger: Trigger): boolean {
  return (TRIGGERS[trigger].from as readonly MachineState[]).includes(state);
}

/** The state after `trigger`; an illegal transition throws a ConflictError (409) that says what is allowed. */
export function transition(machine: { name: string; state: MachineState }, trigger: Trigger): MachineState {
  if (canFire(machine.state, trigger)) return TRIGGERS[trigger].to;
  const from = TRIGGERS[trigger].from;
  throw new ConflictError(`machine "${machine.name}" is ${machine.state}: ${trigger} needs a machine that is ${from.join(' or ')}`, [
    { path: 'state', message: `is ${machine.state}; ${trigger} needs ${from.join('|')}` },
  ]);
}
