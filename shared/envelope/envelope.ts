import { z } from 'zod';
import { canonicalJson } from './canonical.js';
import { ed25519Sign, ed25519Verify } from './ed25519.js';

/** The signed task envelope (see docs/agent-http.md). */
export const TaskEnvelope = z
  .object({
    v: z.literal(1),
    id: z.string().min(1).max(64),
    site: z.string().min(1).max(63),
    agent: z.string().min(1).max(64),
    seq: z.number().int().positive(),
    kind: z.string().min(1).max(64),
    machine: z.string().max(64).nullable(),
    payload: z.unknown(),
    issuedAt: z.string(),
    expiresAt: z.string(),
  })
  .strict();
export type TaskEnvelope = z.infer<typeof TaskEnvelope>;

/** On the wire: the exact signed bytes and the detached signature, both base64. */
export const SignedTask = z.object({ canonical: z.string().min(1).max(1_500_000), signature: z.string().length(88) }).strict();
export type SignedTask = z.infer<typeof SignedTask>;

export type RejectReason = 'bad-signature' | 'malformed' | 'expired' | 'replay' | 'wrong-agent' | 'unknown-kind';

/** Signs the canonical JSON of the envelope with the libsodium secret key (64 bytes); see ed25519.ts. */
export function signTask(envelope: TaskEnvelope, privateKey: Uint8Array): SignedTask {
  const bytes = Buffer.from(canonicalJson(envelope), 'utf8');
  return { canonical: bytes.toString('base64'), signature: ed25519Sign(bytes, privateKey).toString('base64') };
}

/**
 * Verifies the signature over the exact bytes received, then parses those bytes (never a second,
 * unsigned copy). Addressee, expiry and sequence are the caller's checks (`checkEnvelope`).
 */
export function openTask(signed: unknown, publicKey: Uint8Array): { ok: true; envelope: TaskEnvelope } | { ok: false; reason: RejectReason; detail: string; id?: string } {
  const wire = SignedTask.safeParse(signed);
  if (!wire.success) return { ok: false, reason: 'malformed', detail: 'not a signed task {canonical, signature}' };
  const bytes = Buffer.from(wire.data.canonical, 'base64');
  const sig = Buffer.from(wire.data.signature, 'base64');
  // Parsed once, before the signature check, only to name the task in a rejection; the parsed value is
  // used as the envelope only after the signature over these same bytes verified.
  let json: unknown;
  let parsed = true;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    parsed = false;
  }
  const idField = parsed && json !== null && typeof json === 'object' ? (json as { id?: unknown }).id : undefined;
  const parsedId = typeof idField === 'string' ? idField : undefined;
  if (!ed25519Verify(sig, bytes, publicKey)) {
    return { ok: false, reason: 'bad-signature', detail: 'signature does not verify with the pinned central key', id: parsedId };
  }
  if (!parsed) return { ok: false, reason: 'malformed', detail: 'signed bytes are not JSON', id: parsedId };
  const env = TaskEnvelope.safeParse(json);
  if (!env.success) return { ok: false, reason: 'malformed', detail: env.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), id: parsedId };
  return { ok: true, envelope: env.data };
}

/** Addressee and expiry checks; sequence/replay is checked against the agent's durable state. */
export function checkEnvelope(env: TaskEnvelope, me: { agent: string; site: string }, now = Date.now()): { ok: true } | { ok: false; reason: RejectReason; detail: string } {
  if (env.agent !== me.agent || env.site !== me.site) {
    return { ok: false, reason: 'wrong-agent', detail: `addressed to agent ${env.agent} at site ${env.site}, I am ${me.agent} at ${me.site}` };
  }
  const exp = Date.parse(env.expiresAt);
  if (!Number.isFinite(exp) || exp <= now) return { ok: false, reason: 'expired', detail: `expired at ${env.expiresAt}` };
  return { ok: true };
}
