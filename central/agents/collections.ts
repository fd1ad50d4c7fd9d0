import type { CollectionSpec } from '../store/types.js';

export const AGENTS = 'agents';
export const EVENTS = 'events';

export interface AgentDoc {
  [key: string]: unknown;
  id: string;
  site: string;
  name: string;
  certFingerprint: string;
  certSerial: string;
  /** Expiry of the current certificate (set at join since certificates renew; absent on older records). */
  certExpiresAt?: string;
  /** The certificate a renewal replaced: still accepted until the agent connects with the new one. */
  previousCertFingerprint?: string;
  certRenewedAt?: string;
  sealPublicKey: string;
  agentVersion: string;
  /** The next task sequence number for this agent (monotonic, persisted). */
  nextSeq: number;
  createdAt: string;
  updatedAt: string;
  revokedAt?: string;
  lastSeenAt?: string;
}

export const AGENT_COLLECTIONS: CollectionSpec[] = [
  // The previous fingerprint is indexed too: findUnique('certFingerprint', fp) finds the agent by either.
  // Updates (nextSeq at every task create, last-seen, renewals) are journaled as patches: writers copy the document.
  { name: AGENTS, patches: true, unique: [{ field: 'certFingerprint', values: (d) => [String(d.certFingerprint), ...(d.previousCertFingerprint ? [String(d.previousCertFingerprint)] : [])] }] },
  { name: EVENTS, unique: [] },
];
