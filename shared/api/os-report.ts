import { z } from 'zod';

/**
 * What the machine runner in an installed OS reports when it starts (first boot after a deploy, and
 * every boot after): the agent forwards it to the central as an agent event of kind `machine-os`, which
 * moves a deploying machine to `deployed` and records its OS and addresses. Every string is machine data.
 */
export const OsReport = z
  .object({
    machineId: z.string().min(1).max(64),
    /** The image-deploy task that wrote this OS, if the runner knows it (from its credential file). */
    deployTaskId: z.string().min(1).max(64).optional(),
    os: z.object({ id: z.string().max(64), versionId: z.string().max(64).optional(), prettyName: z.string().max(256).optional() }).strict(),
    kernel: z.string().max(256),
    hostname: z.string().max(253).optional(),
    addresses: z
      .array(z.object({ interface: z.string().max(32), mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/).optional(), address: z.string().max(64) }).strict())
      .max(64),
  })
  .strict();
export type OsReport = z.infer<typeof OsReport>;
export const MACHINE_OS_EVENT = 'machine-os';
