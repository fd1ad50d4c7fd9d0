import { z } from 'zod';
import { Duration } from './duration.js';
import { Ipv4, Mac, Name, ParamValue, ParamValues, Timestamps } from './common.js';
import { HardwareFacts } from './facts.js';
import { BmcConfig, BmcConfigInput, PowerReading } from './bmc.js';
import { MachineAddress, MachineDeployment, MachineOs, MachineState } from './lifecycle.js';

/** Param names are lower-case identifiers so templates can use `params.<name>`. */
const ParamName = z.string().regex(/^[a-z][a-z0-9_]*$/, 'param names are lower-case identifiers: [a-z][a-z0-9_]*').max(128);

export const Roles = ['admin', 'operator', 'viewer', 'agent-join'] as const;
export const Role = z.enum(Roles);
export type Role = z.infer<typeof Role>;

// ---- sites
export const Site = z
  .object({ id: z.string(), name: Name, description: z.string().max(1024).optional(), params: ParamValues, ...Timestamps })
  .meta({ id: 'Site' });
export type Site = z.infer<typeof Site>;
export const SiteCreate = z.object({ name: Name, description: z.string().max(1024).optional(), params: ParamValues.optional() }).strict();
export const SitePatch = SiteCreate.partial().strict();

// ---- profiles (named param sets; the profile named "global" applies to every machine)
export const Profile = z
  .object({ id: z.string(), name: Name, description: z.string().max(1024).optional(), params: ParamValues, ...Timestamps })
  .meta({ id: 'Profile' });
export type Profile = z.infer<typeof Profile>;
export const ProfileCreate = SiteCreate;
export const ProfilePatch = SitePatch;

// ---- param definitions
export const ParamDef = z
  .object({
    id: z.string(),
    name: ParamName,
    description: z.string().max(1024).optional(),
    schema: z.record(z.string(), z.unknown()).describe('JSON schema the value must satisfy'),
    default: ParamValue.optional(),
    secret: z.boolean(),
    ...Timestamps,
  })
  .meta({ id: 'ParamDef' });
export type ParamDef = z.infer<typeof ParamDef>;
export const ParamDefCreate = z
  .object({
    name: ParamName,
    description: z.string().max(1024).optional(),
    schema: z.record(z.string(), z.unknown()).default({}),
    default: ParamValue.optional(),
    secret: z.boolean().default(false),
  })
  .strict();
// Spelled out: `.partial()` keeps the create defaults, so any patch reset `secret` to false and `schema` to {}.
export const ParamDefPatch = z
  .object({
    name: ParamName.optional(),
    description: z.string().max(1024).optional(),
    schema: z.record(z.string(), z.unknown()).optional(),
    default: ParamValue.optional(),
    secret: z.boolean().optional(),
  })
  .strict();

// ---- machines
/** The lifecycle state is changed only by actions; a create or PATCH naming it is refused with this. */
const STATE_READ_ONLY = 'the lifecycle state is read-only: it changes through actions (POST /api/v1/machines/{id}/deploy, /release, /rescue; underlay machines deploy|release|rescue) and what the machine\'s agent reports';
const readOnlyState = z
  .unknown()
  .superRefine((_v, ctx) => ctx.addIssue({ code: 'custom', message: STATE_READ_ONLY }))
  .optional()
  .describe('read-only: refused (use the deploy, release and rescue actions)');

export const Facts = HardwareFacts;

export const Machine = z
  .object({
    id: z.string(),
    name: Name,
    site: Name,
    rack: Name.optional(),
    macs: z.array(Mac),
    uuid: z.string().max(64).optional(),
    serial: z.string().max(128).optional(),
    address: Ipv4.optional(),
    profiles: z.array(Name),
    params: ParamValues,
    facts: Facts,
    bootenv: Name,
    state: MachineState.describe('lifecycle state: changed only by actions and agent reports (GET /machines/{id}/events)'),
    stateReason: z.string().optional().describe('why the machine is failed (or what the last transition said)'),
    stateChangedAt: z.string().optional(),
    addresses: z.array(MachineAddress).optional().describe('current addresses: installed OS, DHCP lease, discovery report'),
    os: MachineOs.optional(),
    deployment: MachineDeployment.optional(),
    /** When the last discovery report arrived (a releasing machine returns to ready through discovery). */
    discoveredAt: z.string().optional(),
    netboot: z.boolean().describe('netboot allowed: when false the machine boots from its disk'),
    secretsGeneration: z.number().int().min(0).optional().describe('bumped by POST /machines/{id}/rearm: configs carrying secrets are served to one boot session per generation'),
    servedBy: z.string().optional().describe('the agent that serves this machine (leased it, saw it boot or discovered it); its tasks go there'),
    bmc: BmcConfig.optional().describe('the BMC its agent drives (IPMI or Redfish); the password is the secret param bmc.passwordParam'),
    power: PowerReading.optional().describe('the power state its agent last read through the BMC, and when'),
    ...Timestamps,
  })
  .meta({ id: 'Machine' });
export type Machine = z.infer<typeof Machine>;

export const MachineCreate = z
  .object({
    name: Name,
    site: Name,
    rack: Name.optional(),
    macs: z.array(Mac).max(64).default([]),
    uuid: z.string().max(64).optional(),
    serial: z.string().max(128).optional(),
    address: Ipv4.optional(),
    profiles: z.array(Name).max(64).default([]),
    params: ParamValues.default({}),
    facts: Facts.default({}),
    bootenv: Name.default('discovery'),
    state: readOnlyState,
    bootState: readOnlyState,
    netboot: z.boolean().default(true),
    bmc: BmcConfigInput.optional(),
  })
  .strict();
export const MachinePatch = z
  .object({
    name: Name,
    site: Name,
    rack: Name.nullable(),
    macs: z.array(Mac).max(64),
    uuid: z.string().max(64).nullable(),
    serial: z.string().max(128).nullable(),
    address: Ipv4.nullable(),
    profiles: z.array(Name).max(64),
    params: ParamValues,
    facts: Facts,
    bootenv: Name,
    netboot: z.boolean(),
    bmc: BmcConfigInput.nullable(),
  })
  .partial()
  .extend({ state: readOnlyState, stateReason: readOnlyState, bootState: readOnlyState })
  .strict();

// ---- tokens
export const Token = z
  .object({
    id: z.string(),
    name: z.string().max(128).optional(),
    role: Role,
    site: Name.optional(),
    oneTime: z.boolean(),
    createdAt: z.string(),
    expiresAt: z.string().optional(),
    revokedAt: z.string().optional(),
    usedAt: z.string().optional(),
    lastUsedAt: z.string().optional(),
  })
  .meta({ id: 'Token', description: 'A bearer token. The secret is shown once, at creation; only its hash is stored.' });
export type Token = z.infer<typeof Token>;
export const TokenCreate = z
  .object({
    name: z.string().max(128).optional(),
    role: Role,
    site: Name.optional(),
    ttl: z
      .union([z.literal('never'), Duration])
      .optional()
      .describe('expiry; agent-join tokens default to 24h, other roles to never; "never" is a deliberate no-expiry'),
  })
  .strict();
export const TokenCreated = Token.extend({ token: z.string() }).meta({ id: 'TokenCreated' });
export const AdminTokenRotate = z
  .object({ revoke: z.string().regex(/^[0-9a-f]{16}$/).nullable().describe('id of the token now in DATA/admin.token (null if it holds none): the rotation is refused (409) if that changed') })
  .strict();
export const AdminTokenRotated = Token.extend({ token: z.string(), revokedId: z.string().nullable().describe('the token that was in DATA/admin.token, now revoked') }).meta({ id: 'AdminTokenRotated' });
