/**
 * DHCP configuration model: zod schemas shared with the central's API and the site's desired state.
 * No node-only imports here (only zod and the pure helpers in ip.ts).
 */
import { z } from 'zod';
import { inCidr, ipToInt, isIpv4, isMac, normalizeMac, parseCidr } from './ip.js';
import { normalizeCidr } from '../util/cidr.js';

export const Ipv4Schema = z.string().refine(isIpv4, { message: 'expected an IPv4 address (a.b.c.d)' });

export const MacSchema = z
  .string()
  .refine(isMac, { message: 'expected a MAC address (aa:bb:cc:dd:ee:ff)' })
  .transform((s) => normalizeMac(s));

/** A subnet's IPv4 CIDR, stored normalised (host bits cleared: 198.18.0.9/24 → 198.18.0.0/24). */
export const CidrSchema = z.string().transform((s, ctx) => {
  try {
    const cidr = normalizeCidr(s, 'ipv4');
    parseCidr(cidr);
    return cidr;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected an IPv4 CIDR (a.b.c.d/n)' });
    return z.NEVER;
  }
});

export const IpxeBinarySchema = z.enum(['ipxe.efi', 'snponly.efi']);
export type IpxeBinary = z.infer<typeof IpxeBinarySchema>;

/** Option codes the server owns; they cannot be set through `Subnet.options`. */
export const RESERVED_OPTION_CODES = [0, 50, 51, 52, 53, 54, 55, 57, 58, 59, 61, 82, 255] as const;

export const SubnetSchema = z
  .object({
    cidr: CidrSchema,
    range: z.object({ start: Ipv4Schema, end: Ipv4Schema }),
    gateway: Ipv4Schema.optional(),
    dns: z.array(Ipv4Schema).default([]),
    domain: z.string().min(1).max(253).optional(),
    leaseTimeSec: z.number().int().min(60).max(0x7fffffff).default(3600),
    nextServer: Ipv4Schema.optional(),
    /** Extra options by code (`"42": "198.18.0.1"`), encoded by the option's type; `hex:…` for raw bytes. */
    options: z
      .record(
        z.string().regex(/^\d{1,3}$/, 'option codes are decimal 1..254'),
        z.string().max(255),
      )
      .optional(),
    reservationsOnly: z.boolean().default(false),
    ipxeBinary: IpxeBinarySchema.optional(),
  })
  .superRefine((s, ctx) => {
    let cidr;
    try {
      cidr = parseCidr(s.cidr);
    } catch {
      return; // reported by CidrSchema
    }
    if (!isIpv4(s.range.start) || !isIpv4(s.range.end)) return;
    if (!inCidr(s.range.start, cidr)) ctx.addIssue({ code: 'custom', path: ['range', 'start'], message: `${s.range.start} is outside ${s.cidr}` });
    if (!inCidr(s.range.end, cidr)) ctx.addIssue({ code: 'custom', path: ['range', 'end'], message: `${s.range.end} is outside ${s.cidr}` });
    if (ipToInt(s.range.start) > ipToInt(s.range.end)) ctx.addIssue({ code: 'custom', path: ['range'], message: 'range start is after range end' });
    if (s.gateway && isIpv4(s.gateway) && !inCidr(s.gateway, cidr)) ctx.addIssue({ code: 'custom', path: ['gateway'], message: `${s.gateway} is outside ${s.cidr}` });
    for (const code of Object.keys(s.options ?? {})) {
      const n = Number(code);
      if (n < 1 || n > 254 || (RESERVED_OPTION_CODES as readonly number[]).includes(n)) {
        ctx.addIssue({ code: 'custom', path: ['options', code], message: `option ${code} cannot be configured` });
      }
    }
  });
export type Subnet = z.output<typeof SubnetSchema>;
export type SubnetInput = z.input<typeof SubnetSchema>;

export const ReservationSchema = z.object({
  mac: MacSchema,
  address: Ipv4Schema,
  hostname: z
    .string()
    .regex(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/, 'expected a host name')
    .max(253)
    .optional(),
});
export type Reservation = z.output<typeof ReservationSchema>;
export type ReservationInput = z.input<typeof ReservationSchema>;

export const DhcpModeSchema = z.enum(['full', 'proxy', 'off']);
export type DhcpMode = z.infer<typeof DhcpModeSchema>;

/** What the agent knows about a MAC (from the site's desired state). */
export const MachineFactsSchema = z.object({
  known: z.boolean(),
  netboot: z.boolean(),
  ipxeBinary: IpxeBinarySchema.optional(),
});
export type MachineFacts = z.infer<typeof MachineFactsSchema>;

export const LeaseEventSchema = z.object({
  type: z.enum(['lease', 'release', 'decline', 'expire']),
  mac: z.string(),
  address: Ipv4Schema,
  hostname: z.string().optional(),
  /** The subnet's CIDR. */
  subnet: z.string(),
  /** ISO-8601. */
  expiresAt: z.string(),
});
export type LeaseEvent = z.infer<typeof LeaseEventSchema>;
