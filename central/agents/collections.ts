import type { CollectionSpec } from '../store/types.js';

export const AGENTS = 'agents';
export const TASKS = 'tasks';
export const EVENTS = 'events';

export interface AgentDoc {
  [key: string]: unknown;
  id: string;
  site: string;
  name: string;
  certFingerprint: string;
  certSerial: string;
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
  { name: AGENTS, unique: [{ field: 'certFingerprint', values: (d) => [String(d.certFingerprint)] }] },
  { name: TASKS, unique: [] },
  { name: EVENTS, unique: [] },
];
