import { z } from 'zod';
import { Name, ParamValues } from './common.js';

/**
 * A machine's lifecycle state (ARCHITECTURE.md "A machine's life"). Changed only by actions (deploy,
 * release, rescue) and by what the machine's agent reports, never by a PATCH; every change is an event.
 */
export const MACHINE_STATES = ['discovered', 'ready', 'deploying', 'deployed', 'releasing', 'failed', 'rescue'] as const;
export const MachineState = z.enum(MACHINE_STATES).meta({ id: 'MachineState' });
export type MachineState = z.infer<typeof MachineState>;

/** Where an address was seen: the installed OS's report, the agent's DHCP lease, or the discovery report (proxy mode). */
export const AddressSource = z.enum(['os', 'lease', 'discovery']);
export type AddressSource = z.infer<typeof AddressSource>;

export const MachineAddress = z
  .object({
    address: z.string().max(64),
    source: AddressSource,
    interface: z.string().max(64).optional(),
    mac: z.string().max(32).optional(),
    at: z.string(),
  })
  .meta({ id: 'MachineAddress', description: 'A current address of the machine and where it was seen (machine data: never trusted as code).' });
export type MachineAddress = z.infer<typeof MachineAddress>;

/** What the installed OS reported about itself (machine data). */
export const MachineOs = z
  .object({ id: z.string(), versionId: z.string().optional(), prettyName: z.string().optional(), kernel: z.string(), hostname: z.string().optional(), reportedAt: z.string(), deployTaskId: z.string().optional() })
  .meta({ id: 'MachineOs' });
export type MachineOs = z.infer<typeof MachineOs>;

/** The running or last deploy (or release) of a machine. */
export const MachineDeployment = z
  .object({
    action: z.enum(['deploy', 'release', 'rescue']),
    taskId: z.string().optional(),
    image: z.string().optional(),
    config: z.enum(['cloud-init', 'ignition']).optional(),
    disk: z.string().optional(),
    wipe: z.enum(['quick', 'secure']).optional(),
    powerOff: z.boolean().optional().describe('release --power-off: powered off through the BMC once ready'),
    startedAt: z.string(),
  })
  .meta({ id: 'MachineDeployment' });
export type MachineDeployment = z.infer<typeof MachineDeployment>;

/** Who or what changed a machine's state. */
export const EventCause = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('action'), action: z.string(), tokenId: z.string().optional(), taskId: z.string().optional() }),
    z.object({ kind: z.literal('agent-event'), event: z.string(), agent: z.string(), eventId: z.string().optional() }),
    z.object({ kind: z.literal('task'), taskId: z.string(), taskKind: z.string(), taskState: z.string() }),
    z.object({ kind: z.literal('migration') }),
  ])
  .meta({ id: 'MachineEventCause' });
export type EventCause = z.infer<typeof EventCause>;

export const MachineEvent = z
  .object({
    id: z.string(),
    machine: z.string(),
    site: z.string(),
    seq: z.number().int(),
    from: MachineState.nullable(),
    to: MachineState,
    cause: EventCause,
    reason: z.string().optional(),
    at: z.string(),
  })
  .meta({ id: 'MachineEvent', description: 'One lifecycle transition: from, to, what caused it, why, when.' });
export type MachineEvent = z.infer<typeof MachineEvent>;

export const DeployRequest = z
  .object({
    image: z.string().min(1).max(128).describe('image artifact name (underlay images push --name)'),
    disk: z.string().regex(/^\/dev\/[A-Za-z0-9._:\/-]{1,120}$/, 'a device path like /dev/vda or /dev/disk/by-id/…').optional(),
    config: z.enum(['cloud-init', 'ignition']).default('cloud-init'),
    params: ParamValues.optional().describe('merged into the machine’s params (the deployed OS’s configs render from them)'),
    bootenv: Name.optional().describe('the boot environment the deployed OS’s configs render from (default debian-cloud for cloud-init)'),
  })
  .strict()
  .meta({ id: 'DeployRequest' });
export type DeployRequest = z.infer<typeof DeployRequest>;

export const ReleaseRequest = z
  .object({ wipe: z.enum(['quick', 'secure']).default('quick'), powerOff: z.boolean().default(false).describe('power the machine off through its BMC once it is back in ready') })
  .strict().meta({ id: 'ReleaseRequest' });
export type ReleaseRequest = z.infer<typeof ReleaseRequest>;

/** Error code of `GET /machines/{id}/wait` when the machine lands in `failed` instead. */
export const WAIT_FAILED_CODE = 'machine_failed';
/** Error code of `GET /machines/{id}/wait` at the timeout. */
export const WAIT_TIMEOUT_CODE = 'wait_timeout';
