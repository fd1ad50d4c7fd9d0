import { z } from 'zod';
import { Duration } from './duration.js';

export const AgentJoinRequest = z
  .object({
    csr: z.string().min(100).max(16_384).describe('PEM CSR for the agent’s RSA TLS client key (generated on the agent)'),
    sealPublicKey: z.base64().length(44).describe('X25519 public key (base64) that secret params are sealed to'),
    name: z.string().min(1).max(253).describe('the agent host’s name'),
    agentVersion: z.string().max(64),
  })
  .strict();
export type AgentJoinRequest = z.infer<typeof AgentJoinRequest>;

export const AgentJoinResponse = z
  .object({
    agent: z.object({ id: z.string(), site: z.string() }),
    certificate: z.string(),
    caCertificate: z.string(),
    signingPublicKey: z.string().describe('Ed25519 task-signing public key of the central (base64)'),
    centralUrl: z.string(),
  })
  .meta({ id: 'AgentJoinResponse' });
export type AgentJoinResponse = z.infer<typeof AgentJoinResponse>;

export const Agent = z
  .object({
    id: z.string(),
    site: z.string(),
    name: z.string(),
    agentVersion: z.string(),
    connected: z.boolean(),
    lastSeenAt: z.string().optional(),
    createdAt: z.string(),
    revokedAt: z.string().optional(),
    certFingerprint: z.string(),
    certSerial: z.string().describe('serial of the current client certificate (changes when the agent renews it)'),
    certExpiresAt: z.string().optional().describe('expiry of the current client certificate; the agent renews it after 2/3 of its lifetime'),
  })
  .meta({ id: 'Agent' });

export const TaskCreate = z
  .object({
    site: z.string().min(1).max(63),
    machine: z.string().min(1).max(128).optional(),
    kind: z.string().min(1).max(64),
    payload: z.unknown().optional(),
    ttl: Duration.optional(),
    secret: z.boolean().optional().describe('payload and output are shown only to admin tokens'),
  })
  .strict();

export const Task = z
  .object({
    id: z.string(),
    site: z.string(),
    agent: z.string(),
    machine: z.string().nullable(),
    kind: z.string(),
    payload: z.unknown(),
    seq: z.number(),
    state: z.enum(['queued', 'delivered', 'accepted', 'running', 'succeeded', 'failed', 'rejected', 'cancelled', 'expired']),
    createdAt: z.string(),
    updatedAt: z.string(),
    expiresAt: z.string(),
    secret: z.boolean().optional(),
    history: z.array(z.object({ state: z.string(), at: z.string(), reportId: z.string().optional(), reason: z.string().optional(), exitCode: z.number().optional() })),
    output: z.string().optional(),
    exitCode: z.number().optional(),
    reason: z.string().optional(),
    payloadOmitted: z
      .record(z.string(), z.object({ bytes: z.number(), sha256: z.string() }))
      .optional()
      .describe('Bulk payload fields (exec stdinB64, put-file dataB64, from 1 KiB): kept only in the signed envelope that carries them to the agent; here their decoded size and SHA-256'),
  })
  .meta({ id: 'Task' });
