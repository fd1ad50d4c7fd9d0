import { z } from 'zod';

/**
 * Hardware facts as the discovery collector reports them and the central stores them. Every key is
 * optional (a machine created by hand has none); collectors may add more keys, which are kept.
 */
export const HardwareFacts = z
  .object({
    system: z.object({ uuid: z.string().max(64).nullish(), serial: z.string().max(128).nullish(), vendor: z.string().max(128).nullish(), product: z.string().max(128).nullish() }).partial().optional(),
    firmware: z.enum(['bios', 'uefi']).optional(),
    cpu: z.object({ model: z.string().max(256).nullish(), sockets: z.number().int().min(0).max(64), cores: z.number().int().min(0).max(4096), threads: z.number().int().min(0).max(8192) }).partial().optional(),
    memory: z.object({ totalBytes: z.number().int().min(0) }).partial().optional(),
    disks: z.array(z.object({ name: z.string().max(64), sizeBytes: z.number().int().min(0), model: z.string().max(128).nullish(), serial: z.string().max(128).nullish(), rotational: z.boolean().nullish() }).partial()).max(1024).optional(),
    nics: z.array(z.object({ name: z.string().max(64), mac: z.string().max(32), driver: z.string().max(64).nullish(), link: z.boolean().nullish(), speedMbps: z.number().int().nullish() }).partial()).max(256).optional(),
    bmc: z.object({ address: z.string().max(64) }).partial().optional(),
    bootMac: z.string().max(32).optional(),
  })
  .catchall(z.unknown())
  .meta({
    id: 'HardwareFacts',
    description:
      'system {uuid, serial, vendor, product}, firmware (bios|uefi), cpu {model, sockets, cores, threads}, memory {totalBytes}, disks[] {name, sizeBytes, model, serial, rotational}, nics[] {name, mac, driver, link, speedMbps}, bmc {address}; collectors may add more keys.',
  });
export type HardwareFacts = z.infer<typeof HardwareFacts>;
