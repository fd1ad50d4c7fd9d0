import { z } from 'zod';

/**
 * Task kinds: a registry both sides share. `target` says whether a task runs on the agent itself or is
 * queued for a machine's runner (the agent never runs operator shell on its own host).
 */
export const TASK_KINDS = {
  ping: { target: 'agent', machine: false, payload: z.object({ message: z.string().max(1024).optional() }).strict() },
  'sync-state': { target: 'agent', machine: false, payload: z.object({}).strict() },
  'set-netboot': { target: 'agent', machine: true, payload: z.object({ netboot: z.boolean() }).strict() },
  'set-bootenv': { target: 'agent', machine: true, payload: z.object({ bootenv: z.string().min(1).max(63) }).strict() },
  'run-script': {
    target: 'machine',
    machine: true,
    payload: z.object({ scriptB64: z.base64().max(1_000_000), timeoutSec: z.number().int().min(1).max(86_400).optional() }).strict(),
  },
  reboot: { target: 'machine', machine: true, payload: z.object({}).strict() },
  poweroff: { target: 'machine', machine: true, payload: z.object({}).strict() },
} as const;

export type TaskKind = keyof typeof TASK_KINDS;
export const TaskKindName = z.enum(Object.keys(TASK_KINDS) as [TaskKind, ...TaskKind[]]);

export function isTaskKind(k: string): k is TaskKind {
  return Object.prototype.hasOwnProperty.call(TASK_KINDS, k);
}
