import { z } from 'zod';
import { BootEnvSchema } from '../bootenv/schema.js';

const noControl = (max: number) => z.string().min(1).max(max).regex(/^[^\x00-\x1f\x7f]+$/, 'must not contain control characters');

export const MacAddress = z
  .string()
  .regex(/^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$/, 'MAC address like 52:54:00:12:34:56')
  .transform((m) => m.toLowerCase().replace(/-/g, ':'));

export const MachineInfoSchema = z.object({
  id: noControl(128),
  name: noControl(253),
  macs: z.array(MacAddress).max(64),
  uuid: z.string().regex(/^[0-9A-Fa-f]{8}-?([0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}$/, 'SMBIOS UUID').optional(),
  serial: noControl(128).optional(),
  address: z.union([z.ipv4(), z.ipv6()]).optional(),
  hostname: z
    .string()
    .max(253)
    .regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/, 'RFC 1123 host name')
    .optional(),
  arch: z.string().regex(/^[a-z0-9_]{1,16}$/).optional(),
  platform: z.enum(['pcbios', 'efi']).optional(),
  known: z.boolean(),
  netboot: z.boolean(),
});

const fn = z.custom<(path: string) => string>((v) => typeof v === 'function', 'must be a function');
const httpUrl = z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, ''));

export const RenderContextSchema = z.object({
  machine: MachineInfoSchema,
  site: z.object({ name: noControl(128) }),
  /** Resolved param values (`paramValues(resolveParams(...))`). */
  params: z.record(z.string(), z.unknown()),
  /** The machine's boot environment; required for known machines (unknown machines get discovery). */
  bootenv: BootEnvSchema.optional(),
  agent: z.object({
    httpUrl,
    tftpAddress: z.string().min(1).max(255),
    pubkey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'base64 Ed25519 public key (32 bytes)').optional(),
  }),
  /** This boot's single-use boot token (also in urls.machineBase); see agent/http/boot-sessions.ts. */
  token: z.string().regex(/^[A-Za-z0-9_-]{8,256}$/, 'token is 8-256 characters of [A-Za-z0-9_-]'),
  urls: z.object({
    /** URL of a boot artifact under the agent's /files/. */
    files: fn,
    /** agent httpUrl + '/m/' + token, no trailing slash. */
    machineBase: httpUrl,
    /** Where installers POST success (agent flips the machine to local boot). */
    done: httpUrl,
  }),
  /** The discovery boot environment to use for unknown machines (default: the built-in one). */
  discovery: BootEnvSchema.optional(),
  /** The site's service CAs (public): templates see them, and the machine's certificate paths, as `pki` (shared/pki/template-context.ts). */
  serviceCas: z.array(z.object({ name: z.string().min(1).max(63), service: z.string().min(1).max(63).optional(), certificate: z.string().max(65_536) })).max(1000).optional(),
  /** Shared snippets for `{% include %}` / `{% render %}`. */
  snippets: z.record(z.string(), z.string()).optional(),
});

export type RenderContext = z.input<typeof RenderContextSchema>;
export type ParsedRenderContext = z.output<typeof RenderContextSchema>;
export type MachineInfo = z.input<typeof MachineInfoSchema>;
