import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import type { Logger } from '../../shared/log/logger.js';
import { makeCsr } from '../../shared/pki/csr.js';
import { describeRemaining, MAX_TIMER_MS, renewalDueAt, validityOf } from '../../shared/pki/renewal.js';
import type { AgentToCentral, CertRenewAnswer, Feature } from '../../shared/protocol/messages.js';
import { storeRenewedTls, type TlsPaths } from '../state/tls-files.js';
import { backoffDelay } from '../../shared/util/backoff.js';
import type { LinkState } from './link.js';

/** What the renewer needs of the link (agent/link/link.ts). */
export interface RenewalLink {
  readonly state: LinkState;
  send(msg: AgentToCentral): boolean;
  hasFeature(f: Feature): boolean;
  onState(fn: (s: LinkState) => void): () => void;
  reconnect(reason: string): void;
}

export interface CertRenewerOptions {
  agentId: string;
  paths: TlsPaths;
  /** The agent's live TLS material: key and cert are replaced in place after a renewal. */
  tls: { key: string; cert: string; ca: string };
  link: RenewalLink;
  logger: Logger;
  /** How long to wait for the central's answer (default 30 s). */
  answerTimeoutMs?: number;
  /** Retry backoff (default 10 s doubling to 1 h); a retry never waits more than a tenth of the time left. */
  backoff?: { baseMs?: number; maxMs?: number };
}

/**
 * Renews the agent's client certificate over the link once 2/3 of its lifetime have passed: a new key and
 * CSR are made here (the key never leaves the agent), the central signs the CSR for the connection's
 * agent, the new pair is stored crash-safe (the old one stays on disk until the new one is), and the link
 * reconnects at once with it, so the central sees the new certificate in use and stops accepting the old.
 * Failures (refusal, no answer, link down) are retried with backoff, logging how long the certificate has left.
 */
export class CertRenewer {
  private timer: NodeJS.Timeout | null = null;
  private pending: { id: string; keyPem: string; timeout: NodeJS.Timeout } | null = null;
  private failures = 0;
  private due = false;
  private stopped = false;
  private unsubscribe: (() => void) | null = null;
  /** Renewals stored since start (for tests). */
  renewals = 0;

  constructor(private readonly o: CertRenewerOptions) {}

  start(): void {
    this.unsubscribe = this.o.link.onState((s) => {
      if (s === 'ready' && this.due) this.attempt();
    });
    const left = this.left();
    this.o.logger.info({ expiresIn: describeRemaining(left), renewIn: describeRemaining(renewalDueAt(this.o.tls.cert) - Date.now()) }, 'client certificate');
    if (left <= 0) this.o.logger.error('the client certificate has expired: the central will refuse this agent; join it again');
    this.scheduleDue();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    if (this.pending) clearTimeout(this.pending.timeout);
    this.timer = null;
    this.pending = null;
  }

  private left(): number {
    return validityOf(this.o.tls.cert).notAfter - Date.now();
  }

  private after(ms: number, fn: () => void): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      fn();
    }, Math.min(Math.max(ms, 0), MAX_TIMER_MS));
    this.timer.unref();
  }

  private scheduleDue(): void {
    const wait = renewalDueAt(this.o.tls.cert) - Date.now();
    if (wait > MAX_TIMER_MS) return this.after(MAX_TIMER_MS, () => this.scheduleDue());
    this.after(wait, () => {
      this.due = true;
      this.attempt();
    });
  }

  private attempt(): void {
    if (this.stopped || this.pending) return;
    if (this.o.link.state !== 'ready') return; // tried again when the link is ready
    if (!this.o.link.hasFeature('cert-renew')) {
      return this.failed('the central does not offer certificate renewal (an older central)');
    }
    const { keyPem, csrPem } = makeCsr(`agent:${this.o.agentId}`);
    const id = randomUUID();
    const timeout = setTimeout(() => {
      if (this.pending?.id !== id) return;
      this.pending = null;
      this.failed(`no answer from the central within ${this.o.answerTimeoutMs ?? 30_000} ms`);
    }, this.o.answerTimeoutMs ?? 30_000);
    timeout.unref();
    this.pending = { id, keyPem, timeout };
    this.o.logger.info({ expiresIn: describeRemaining(this.left()) }, 'renewing the client certificate');
    if (!this.o.link.send({ type: 'cert-renew', id, csr: csrPem })) {
      clearTimeout(timeout);
      this.pending = null;
      this.failed('the link closed before the request went out');
    }
  }

  /** The central's answer to our `cert-renew` (routed here by the agent's message handler). */
  onAnswer(msg: CertRenewAnswer): void {
    const p = this.pending;
    if (!p || p.id !== msg.id) {
      this.o.logger.warn({ id: msg.id }, 'an answer to no pending certificate renewal; ignored');
      return;
    }
    clearTimeout(p.timeout);
    this.pending = null;
    if (msg.type === 'cert-renew-refused') return this.failed(`the central refused: ${msg.message}`, msg.code);
    const why = this.check(msg.certificate, p.keyPem);
    if (why) return this.failed(`the central answered with an unusable certificate: ${why}`);
    try {
      storeRenewedTls(this.o.paths, p.keyPem, msg.certificate);
    } catch (e) {
      return this.failed(`could not store the renewed certificate: ${(e as Error).message}`);
    }
    this.o.tls.key = p.keyPem;
    this.o.tls.cert = msg.certificate;
    this.renewals++;
    this.failures = 0;
    this.due = false;
    const v = validityOf(msg.certificate);
    this.o.logger.info({ serial: v.serial, notAfter: new Date(v.notAfter).toISOString() }, 'client certificate renewed');
    this.scheduleDue();
    this.o.link.reconnect('client certificate renewed');
  }

  /** Why a certificate from the central must not be used, or null. */
  private check(certPem: string, keyPem: string): string | null {
    try {
      const cert = new X509Certificate(certPem);
      const ca = new X509Certificate(this.o.tls.ca);
      if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'not signed by the pinned CA';
      if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return 'not for the key made for this renewal';
      if (Date.parse(cert.validTo) <= Date.now()) return 'already expired';
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  private failed(reason: string, code?: string): void {
    const left = this.left();
    const delay = Math.min(backoffDelay(this.failures++, { baseMs: this.o.backoff?.baseMs ?? 10_000, maxMs: this.o.backoff?.maxMs ?? 3_600_000, minMs: 1000 }), Math.max(1000, left / 10));
    this.o.logger.warn({ reason, code, retryInMs: delay, expiresIn: describeRemaining(left), expiresAt: new Date(Date.now() + left).toISOString() }, 'certificate renewal failed; will retry');
    this.after(delay, () => this.attempt());
  }
}
