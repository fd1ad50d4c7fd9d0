import { z } from 'zod';
import { isInterfaceAddress } from '../util/cidr.js';
import { issuesToDetails, type IssueDetail } from './issues.js';

/**
 * Hardware facts as the discovery collector (images/discovery/collect.sh) reports them and the central
 * stores them. Every key is optional (a machine created by hand has none). Facts come from machines, so
 * they are validated at every edge (the agent's and the central's discovery, the machines API) with
 * this one schema: known keys only (an unknown key is refused, not dropped), bounded strings and
 * arrays, and at most MAX_FACTS_BYTES of JSON in all.
 */

/** Serialised size limit of one machine's facts (UTF-8 bytes of their JSON). */
export const MAX_FACTS_BYTES = 64 * 1024;
/** Free text the hardware reports (DMI strings, CPU and disk models, serials). */
const TEXT = 256;
const text = () => z.string().max(TEXT);

const System = z.strictObject({ uuid: z.string().max(64).nullish(), serial: text().nullish(), vendor: text().nullish(), product: text().nullish() }).partial();
const Cpu = z
  .strictObject({ model: text().nullish(), sockets: z.number().int().min(0).max(64), cores: z.number().int().min(0).max(4096), threads: z.number().int().min(0).max(8192) })
  .partial();
const Memory = z.strictObject({ totalBytes: z.number().int().min(0) }).partial();
const Disk = z
  .strictObject({ name: z.string().max(64), sizeBytes: z.number().int().min(0), model: text().nullish(), serial: text().nullish(), rotational: z.boolean().nullish() })
  .partial();
const Nic = z
  .strictObject({
    name: z.string().max(64),
    mac: z.string().max(32),
    driver: z.string().max(64).nullish(),
    link: z.boolean().nullish(),
    speedMbps: z.number().int().nullish(),
    /** The interface's addresses when it was discovered (with prefix length, e.g. 198.18.0.5/24): in proxy mode the site's DHCP server leased them, so this is where the central learns them. */
    addresses: z.array(z.string().max(64).refine(isInterfaceAddress, 'an IPv4 or IPv6 address, optionally with /prefix')).max(16).optional(),
  })
  .partial();

export const HardwareFacts = z
  .strictObject({
    system: System.optional(),
    firmware: z.enum(['bios', 'uefi']).optional(),
    cpu: Cpu.optional(),
    memory: Memory.optional(),
    disks: z.array(Disk).max(512).optional(),
    nics: z.array(Nic).max(256).optional(),
    bmc: z.strictObject({ address: z.string().max(64) }).partial().optional(),
    bootMac: z.string().max(32).optional(),
  })
  .superRefine((facts, ctx) => {
    const bytes = Buffer.byteLength(JSON.stringify(facts), 'utf8');
    if (bytes > MAX_FACTS_BYTES) ctx.addIssue({ code: 'custom', path: [], message: `facts are ${bytes} bytes of JSON; at most ${MAX_FACTS_BYTES} are accepted` });
  })
  .meta({
    id: 'HardwareFacts',
    description: `system {uuid, serial, vendor, product}, firmware (bios|uefi), cpu {model, sockets, cores, threads}, memory {totalBytes}, disks[] {name, sizeBytes, model, serial, rotational}, nics[] {name, mac, driver, link, speedMbps, addresses}, bmc {address}, bootMac. Unknown keys are refused; strings are bounded; at most ${MAX_FACTS_BYTES} bytes of JSON in all.`,
  });
export type HardwareFacts = z.infer<typeof HardwareFacts>;

/** Facts that fail the schema: every offending path, for a clear 400 (or a log line). */
export class InvalidFactsError extends Error {
  constructor(readonly problems: IssueDetail[]) {
    super(`invalid facts: ${problems.map((p) => `${p.path === '(body)' ? '(facts)' : p.path}: ${p.message}`).join('; ')}`);
  }
}

/** Validates facts from outside (a machine's discovery post, an agent's event); throws InvalidFactsError. */
export function parseFacts(input: unknown): HardwareFacts {
  const r = HardwareFacts.safeParse(input);
  if (!r.success) throw new InvalidFactsError(issuesToDetails(r.error.issues));
  return r.data;
}
