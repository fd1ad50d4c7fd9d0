import { X509Certificate } from 'node:crypto';
import type { Logger } from '../../shared/log/logger.js';
import type { CertRenewAnswer, CertRenewMsg } from '../../shared/protocol/messages.js';
import { fingerprint, signCsr, type KeyPairPem } from '../pki/ca.js';
import type { Store } from '../store/types.js';
import { AGENTS, type AgentDoc } from './collections.js';

/** The agent may not renew: revoked, or the connection's certificate is no longer one of its own. */
export class CertRenewalForbiddenError extends Error {
  readonly code = 'revoked';
}
/** The CSR does not parse or its signature does not verify. */
export class CertRenewalInvalidError extends Error {
  readonly code = 'invalid-csr';
}
/** Renewed moments ago (a flood of CSRs costs a signature and a write each); try again later. */
export class CertRenewalTooSoonError extends Error {
  readonly code = 'too-soon';
}

export interface AgentCertRenewalOptions {
  store: Store;
  ca: KeyPairPem;
  /** Lifetime of the certificates issued (the central's --agent-cert-lifetime). */
  lifetimeMs: number;
  logger: Logger;
  /** At most one renewal per agent in this long (default 5 s). */
  minIntervalMs?: number;
}

/**
 * Renews a connected agent's client certificate from a CSR it made (the key never leaves the agent). The
 * agent is identified by the mTLS connection, never by the message: the CSR's subject is ignored and the
 * certificate names `agent:<id>` as at join. The new fingerprint, serial and expiry go on the agent
 * record; the certificate the connection used stays accepted (`previousCertFingerprint`) until the agent
 * connects with the new one, so an answer lost on the way (crash, cut link) never locks the agent out.
 */
export class AgentCertRenewal {
  private readonly lastAt = new Map<string, number>();

  constructor(private readonly o: AgentCertRenewalOptions) {}

  /** Signs the CSR and records the new certificate (durably) before returning it. */
  async renew(agentId: string, connectionFingerprint: string, csrPem: string): Promise<string> {
    const doc = this.o.store.get<AgentDoc>(AGENTS, agentId);
    if (!doc || doc.revokedAt) throw new CertRenewalForbiddenError(`agent ${agentId} is revoked or unknown; it cannot renew`);
    if (connectionFingerprint !== doc.certFingerprint && connectionFingerprint !== doc.previousCertFingerprint) {
      throw new CertRenewalForbiddenError('this connection’s certificate is no longer the agent’s');
    }
    const now = Date.now();
    const last = this.lastAt.get(agentId);
    if (last !== undefined && now - last < (this.o.minIntervalMs ?? 5000)) throw new CertRenewalTooSoonError('renewed moments ago; try again later');
    this.lastAt.set(agentId, now); // every attempt counts, a garbage CSR too (each costs a parse and a verify)
    let certPem: string;
    try {
      certPem = signCsr(this.o.ca, csrPem, { commonName: `agent:${agentId}`, usage: 'client', lifetimeMs: this.o.lifetimeMs });
    } catch (e) {
      throw new CertRenewalInvalidError((e as Error).message);
    }
    const x = new X509Certificate(certPem);
    const next: AgentDoc = {
      ...doc,
      certFingerprint: fingerprint(certPem),
      certSerial: x.serialNumber,
      certExpiresAt: new Date(Date.parse(x.validTo)).toISOString(),
      previousCertFingerprint: connectionFingerprint,
      certRenewedAt: new Date(now).toISOString(),
      updatedAt: new Date(now).toISOString(),
    };
    await this.o.store.put(AGENTS, next);
    this.o.logger.info({ agent: agentId, serial: next.certSerial, notAfter: next.certExpiresAt }, 'renewed an agent certificate');
    return certPem;
  }

  /** The answer to a `cert-renew` message: the certificate, or why not (never throws). */
  async answer(agentId: string, connectionFingerprint: string, msg: CertRenewMsg): Promise<CertRenewAnswer> {
    try {
      return { type: 'cert-renewed', id: msg.id, certificate: await this.renew(agentId, connectionFingerprint, msg.csr) };
    } catch (e) {
      const known = e instanceof CertRenewalForbiddenError || e instanceof CertRenewalInvalidError || e instanceof CertRenewalTooSoonError;
      const code = known ? e.code : 'unavailable';
      const message = known ? e.message : 'the central could not record the renewal; try again later';
      (code === 'unavailable' ? this.o.logger.error : this.o.logger.warn).call(this.o.logger, { agent: agentId, code, err: known ? undefined : e }, 'refused an agent certificate renewal');
      return { type: 'cert-renew-refused', id: msg.id, code, message };
    }
  }
}

/**
 * The record after the agent connected with certificate `fingerprint`: once it uses its renewed
 * certificate, the previous one is no longer accepted.
 */
export function retirePreviousCert(doc: AgentDoc, connectedWith: string | undefined): AgentDoc {
  if (!doc.previousCertFingerprint || connectedWith !== doc.certFingerprint) return doc;
  const { previousCertFingerprint: _retired, ...rest } = doc;
  return rest as AgentDoc;
}
