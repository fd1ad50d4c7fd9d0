import { z } from 'zod';
import { base64 } from '../util/base64.js';
import { ImageRef } from '../api/images.js';
import { Duration } from '../api/duration.js';
import { ExecPayload, FetchFilePayload, PutFilePayload } from './remote-kinds.js';

/** What an `image-deploy` task carries (the central builds it from the image and the machine). */
export const ImageDeployPayload = z
  .object({
    image: ImageRef,
    /** Target disk, e.g. /dev/vda or /dev/disk/by-id/…; default: the machine's first non-removable disk. */
    disk: z.string().regex(/^\/dev\/[A-Za-z0-9._:\/-]{1,120}$/).optional(),
    /** How first boot is configured: cloud-init NoCloud from the agent, or Ignition from the agent. */
    config: z.enum(['cloud-init', 'ignition']),
  })
  .strict();
export type ImageDeployPayload = z.infer<typeof ImageDeployPayload>;

/** What a `cert-request` task carries. */
export const CertRequestPayload = z
  .object({
    ca: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/),
    sans: z.array(z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/)).max(32).optional(),
    ttl: Duration.optional(),
  })
  .strict();

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
    payload: z.object({ scriptB64: base64().max(1_000_000), timeoutSec: z.number().int().min(1).max(86_400).optional() }).strict(),
  },
  /**
   * Deploy: the runner (discovery environment) streams the image from its agent (`/files/sha256/<sha256>`),
   * decompresses on the fly, writes `disk`, verifies the sha256 of exactly what it wrote, grows the root
   * partition and filesystem, installs the config seed and the installed-OS runner's credential. The
   * agent turns netboot off when it succeeds; the runner then reboots into the disk.
   */
  'image-deploy': { target: 'machine', machine: true, payload: ImageDeployPayload },
  /** Release: the runner (installed OS or discovery) wipes the disks and netboots back into discovery. */
  release: { target: 'machine', machine: true, payload: z.object({ wipe: z.enum(['quick', 'secure']).default('quick') }).strict() },
  reboot: { target: 'machine', machine: true, payload: z.object({}).strict() },
  /**
   * A certificate from service CA `ca` (docs/pki.md): the runner makes a key on the machine and sends a
   * CSR through its agent; `sans` (default: every name the central knows for the machine) and `ttl` (at
   * most the CA's maximum) are what it asks for. The runner renews it by itself before it expires.
   */
  'cert-request': { target: 'machine', machine: true, payload: CertRequestPayload },
  poweroff: { target: 'machine', machine: true, payload: z.object({}).strict() },
  /** Power a machine through its BMC (agent-side: the agent alone reaches the site's BMC network). */
  power: { target: 'agent', machine: true, payload: z.object({ action: z.enum(['on', 'off', 'cycle', 'reset', 'status']) }).strict() },
  /** Next boot device through the BMC: once (the next boot only) or persistent. */
  'boot-device': { target: 'agent', machine: true, payload: z.object({ device: z.enum(['pxe', 'disk']), persistent: z.boolean().default(false) }).strict() },
  /** Ansible's connection (docs/ansible.md): a command with stdin, a file chunk up, a file chunk down. */
  exec: { target: 'machine', machine: true, payload: ExecPayload },
  'put-file': { target: 'machine', machine: true, payload: PutFilePayload },
  'fetch-file': { target: 'machine', machine: true, payload: FetchFilePayload },
} as const;

export type TaskKind = keyof typeof TASK_KINDS;
/** The kinds the agent runs itself (each has a handler in agent/tasks/kinds/). */
export type AgentTaskKind = { [K in TaskKind]: (typeof TASK_KINDS)[K]['target'] extends 'agent' ? K : never }[TaskKind];
export const TaskKindName = z.enum(Object.keys(TASK_KINDS) as [TaskKind, ...TaskKind[]]);

export function isTaskKind(k: string): k is TaskKind {
  return Object.prototype.hasOwnProperty.call(TASK_KINDS, k);
}
