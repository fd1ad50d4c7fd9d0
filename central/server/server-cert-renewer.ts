import type { Logger } from '../../shared/log/logger.js';
import { describeRemaining, MAX_TIMER_MS, renewalDueAt, validityOf } from '../../shared/pki/renewal.js';
import type { KeyPairPem } from '../pki/ca.js';
import type { CentralIdentity } from './identity.js';
import { issueServerCert } from './server-cert.js';

export interface ServerCertRenewerOptions {
  dir: string;
  identity: CentralIdentity;
  sans: string[];
  lifetimeMs: number;
  /** Puts the new certificate into the running HTTPS server (new connections see it; open ones stay). */
  install: (server: KeyPairPem) => void;
  logger: Logger;
  /** Replaceable in tests (e.g. to fail). */
  issue?: (dir: string, ca: KeyPairPem, sans: string[], lifetimeMs: number) => KeyPairPem;
}

/**
 * Renews the central's server certificate while it runs: a timer fires once 2/3 of the certificate's
 * lifetime have passed, issues a new key and certificate, writes them to the data dir and swaps them into
 * the running server. A failure is logged and retried (every lifetime/100, between 1 s and 5 min); it
 * never throws out of the timer.
 */
export class ServerCertRenewer {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Renewals done and failed since start (for tests and logs). */
  renewals = 0;
  failures = 0;

  constructor(private readonly o: ServerCertRenewerOptions) {}

  start(): void {
    this.stopped = false;
    this.schedule(renewalDueAt(this.o.identity.server.certPem) - Date.now());
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(inMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), Math.min(Math.max(inMs, 0), MAX_TIMER_MS));
    this.timer.unref();
  }

  private tick(): void {
    this.timer = null;
    const due = renewalDueAt(this.o.identity.server.certPem);
    if (Date.now() < due) return this.schedule(due - Date.now()); // a wait longer than one timer
    try {
      this.renewNow();
    } catch (e) {
      this.failures++;
      const retryMs = Math.min(300_000, Math.max(1000, Math.round(this.o.lifetimeMs / 100)));
      const left = validityOf(this.o.identity.server.certPem).notAfter - Date.now();
      this.o.logger.error({ err: e, retryMs, expiresIn: describeRemaining(left) }, 'could not renew the server certificate; retrying');
      this.schedule(retryMs);
    }
  }

  /** Issues, stores and installs a new server certificate now. */
  renewNow(): KeyPairPem {
    const issue = this.o.issue ?? issueServerCert;
    const next = issue(this.o.dir, this.o.identity.ca, this.o.sans, this.o.lifetimeMs);
    this.o.install(next);
    this.o.identity.server = next;
    this.renewals++;
    const v = validityOf(next.certPem);
    this.o.logger.info({ serial: v.serial, notAfter: new Date(v.notAfter).toISOString() }, 'renewed the server certificate');
    this.schedule(renewalDueAt(next.certPem) - Date.now());
    return next;
  }
}
