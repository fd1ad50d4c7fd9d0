import { z } from 'zod';
import { BmcConfig } from '../api/bmc.js';

/** What the agent needs to know about a machine of its site to boot it while offline. */
export const MachineState = z.object({
  id: z.string(),
  name: z.string(),
  macs: z.array(z.string()),
  uuid: z.string().optional(),
  serial: z.string().optional(),
  address: z.string().optional(),
  rack: z.string().optional(),
  bootenv: z.string(),
  /** The machine's lifecycle state (central/lifecycle): informational for the agent. */
  state: z.string().optional(),
  netboot: z.boolean(),
  profiles: z.array(z.string()),
  /**
   * Bumped by `POST /machines/{id}/rearm`: a config carrying secrets is served to one boot session per
   * value of this (the agent refuses later sessions with 410 until the operator re-arms).
   */
  secretsGeneration: z.number().int().min(0).optional(),
  /** The machine's BMC (its password is the sealed param `bmc.passwordParam`). */
  bmc: BmcConfig.optional(),
  /** Params with secret values replaced by `{ "$sealed": base64 }` sealed to this agent. */
  params: z.record(z.string(), z.unknown()),
});
export type MachineState = z.infer<typeof MachineState>;

/** A service CA as agents serve it to machines: public material only. */
export const PkiCaState = z.object({ name: z.string(), service: z.string().optional(), certificate: z.string(), crl: z.string().optional() });
/** The central's answer to a machine's CSR (the latest per machine and CA). */
export const PkiRequestState = z.object({
  request: z.string(),
  machine: z.string(),
  ca: z.string(),
  state: z.enum(['issued', 'refused']),
  certificate: z.string().optional(),
  serial: z.string().optional(),
  notBefore: z.string().optional(),
  notAfter: z.string().optional(),
  reason: z.string().optional(),
});
export type PkiRequestState = z.infer<typeof PkiRequestState>;
export const PkiState = z.object({ cas: z.array(PkiCaState), requests: z.array(PkiRequestState) });

/**
 * A site's desired state: a full snapshot, versioned by a hash of its content, pushed on connect and
 * on every change, stored durably by the agent, served from the agent's copy while the central is away.
 * Features add sections (subnets, reservations, boot environments, profiles, param definitions).
 */
export const DesiredState = z.object({
  version: z.string(),
  generatedAt: z.string(),
  site: z.object({ name: z.string(), params: z.record(z.string(), z.unknown()) }),
  machines: z.array(MachineState),
  subnets: z.array(z.unknown()).default([]),
  reservations: z.array(z.unknown()).default([]),
  bootenvs: z.array(z.unknown()).default([]),
  profiles: z.array(z.unknown()).default([]),
  paramDefs: z.array(z.unknown()).default([]),
  globalParams: z.record(z.string(), z.unknown()).default({}),
  /** Named snippets boot templates include. */
  templates: z.record(z.string(), z.string()).default({}),
  /** Artifacts the central holds, by content hash, with the upstream URLs they stand for. */
  artifacts: z.array(z.object({ sha256: z.string(), size: z.number(), urls: z.array(z.string()), name: z.string().optional() })).default([]),
  /** Service CAs (certificate + CRL, public) and the answers to this site's machines' latest CSRs (central/service-pki). */
  pki: PkiState.optional(),
});
export type DesiredState = z.infer<typeof DesiredState>;
