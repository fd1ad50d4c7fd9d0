import sodium from 'libsodium-wrappers';
import { ConflictError } from '../../shared/errors/domain-errors.js';

/**
 * Secret params (ParamDef.secret) are stored only sealed: `crypto_box_seal` to the X25519 key of every
 * agent that needs the value — the agents of the machine's or site's site, or every agent for a profile.
 * The central cannot read them back; an agent that joins later needs the secret set again (documented).
 * Stored form: `{ "$sealed": { "<agent id>": "<base64>" } }`; an agent receives only its own box.
 */
export interface SealedValue {
  $sealed: Record<string, string>;
}

export function isSealed(v: unknown): v is SealedValue {
  return !!v && typeof v === 'object' && !Array.isArray(v) && typeof (v as SealedValue).$sealed === 'object' && (v as SealedValue).$sealed !== null;
}

/** Libsodium must be ready before the first seal (awaited once at start). */
export const sodiumReady = sodium.ready;

/** Who may open a sealed value: an agent's id and its X25519 public key (base64). */
export interface SealRecipient {
  id: string;
  sealPublicKey: string;
}

/** What sealing needs to know, read from the store by its owner (central/params/sealing.ts). */
export interface SealContext {
  /** Names of the params defined secret. */
  secretNames(): Set<string>;
  /** The unrevoked agents of a site, or of every site ('all': profiles apply everywhere). */
  recipients(scope: { site: string } | 'all'): SealRecipient[];
}

/** Seals the plaintext values of secret params (those defined secret, plus `alsoSecret`: a param being made secret). */
export function sealParams(ctx: SealContext, params: Record<string, unknown>, scope: { site: string } | 'all', where: string, alsoSecret: string[] = []): Record<string, unknown> {
  const secrets = new Set([...ctx.secretNames(), ...alsoSecret]);
  const pending = Object.keys(params).filter((k) => secrets.has(k) && !isSealed(params[k]));
  if (pending.length === 0) return params;
  const agents = ctx.recipients(scope);
  if (agents.length === 0) {
    throw new ConflictError(
      `secret param(s) ${pending.join(', ')} can only be stored sealed to an agent, and ${scope === 'all' ? 'no agent has joined yet' : `site "${scope.site}" has no joined agent`}; join one first`,
      pending.map((p) => ({ path: `${where}.${p}`, message: 'no agent to seal to' })),
    );
  }
  const out = { ...params };
  for (const k of pending) {
    const clear = Buffer.from(JSON.stringify(params[k]), 'utf8');
    out[k] = { $sealed: Object.fromEntries(agents.map((a) => [a.id, Buffer.from(sodium.crypto_box_seal(clear, Buffer.from(a.sealPublicKey, 'base64'))).toString('base64')])) };
  }
  return out;
}

/** An agent's view of params: its own sealed box per secret (`{ "$sealed": base64 }`), others dropped. */
export function paramsForAgent(params: Record<string, unknown>, agentId: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    if (!isSealed(v)) out[k] = v;
    else if (v.$sealed[agentId]) out[k] = { $sealed: v.$sealed[agentId] };
  }
  return out;
}

/**
 * What the API shows for params: sealed values say which agents can open them, never more; a plaintext
 * value of a secret param (stored before its param was made secret, before that sealed it in the same
 * write) shows as "[secret]".
 */
export function redactSealed(params: Record<string, unknown>, secrets: Set<string> = new Set()): Record<string, unknown> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, isSealed(v) ? { $sealed: Object.keys(v.$sealed) } : secrets.has(k) ? '[secret]' : v]));
}
