import { existsSync, mkdirSync, chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileDurableSync } from '../../shared/fs/durable.js';
import { completePendingTls } from './tls-files.js';

/** Layout of the agent's state directory (`--state DIR`, env UNDERLAY_STATE, default ./agent-state). */
export function statePaths(dir: string) {
  const p = (f: string) => join(dir, f);
  return {
    dir,
    identity: p('agent.json'),
    tlsKey: p('tls.key'),
    tlsCert: p('tls.pem'),
    /** A renewed key + certificate on their way into tls.key / tls.pem (see tls-files.ts). */
    tlsNext: p('tls.next.json'),
    ca: p('ca.pem'),
    sealKey: p('seal.key'),
    desiredState: p('desired-state.json'),
    outbox: p('outbox.jsonl'),
    taskLog: p('tasks.jsonl'),
    machineQueue: p('machine-tasks.jsonl'),
    rejections: p('rejections.jsonl'),
    leases: p('leases.jsonl'),
    bootSessions: p('boot-sessions.jsonl'),
    osCredentials: p('os-credentials.jsonl'),
    bootFiles: p('boot'),
  };
}
export type StatePaths = ReturnType<typeof statePaths>;

export const AgentIdentity = z.object({
  agentId: z.string(),
  site: z.string(),
  centralUrl: z.string(),
  /** Ed25519 task-signing public key of the central, pinned at join (base64). */
  signingPublicKey: z.string(),
  caFingerprint: z.string(),
  joinedAt: z.string(),
  name: z.string(),
});
export type AgentIdentity = z.infer<typeof AgentIdentity>;

export function ensureStateDir(dir: string): StatePaths {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return statePaths(dir);
}

export function loadIdentity(paths: StatePaths): { identity: AgentIdentity; tls: { key: string; cert: string; ca: string }; sealKey: { publicKey: string; privateKey: string } } {
  if (!existsSync(paths.identity)) {
    throw new Error(`no agent identity in ${paths.dir}: run "underlay agent join --central URL --token TOKEN --state ${paths.dir}" first`);
  }
  const identity = AgentIdentity.parse(JSON.parse(readFileSync(paths.identity, 'utf8')));
  completePendingTls(paths);
  return {
    identity,
    tls: { key: readFileSync(paths.tlsKey, 'utf8'), cert: readFileSync(paths.tlsCert, 'utf8'), ca: readFileSync(paths.ca, 'utf8') },
    sealKey: JSON.parse(readFileSync(paths.sealKey, 'utf8')) as { publicKey: string; privateKey: string },
  };
}

export function saveJson(path: string, value: unknown, mode = 0o600): void {
  writeFileDurableSync(path, JSON.stringify(value, null, 2) + '\n', mode);
}
