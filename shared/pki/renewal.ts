import { X509Certificate } from 'node:crypto';

/** Certificates are back-dated this much (clock skew between the central and its agents). */
export const BACKDATE_MS = 5 * 60_000;
/** A certificate is renewed once this fraction of its lifetime has passed. */
export const RENEW_AFTER_FRACTION = 2 / 3;

export interface CertValidity {
  notBefore: number;
  notAfter: number;
  serial: string;
}

export function validityOf(certPem: string): CertValidity {
  const c = new X509Certificate(certPem);
  return { notBefore: Date.parse(c.validFrom), notAfter: Date.parse(c.validTo), serial: c.serialNumber };
}

/**
 * When a certificate should be renewed: after 2/3 of its lifetime, counted from its issue time (notBefore
 * without the back-dating), so a 90-day certificate renews with 30 days left and a 30-second one with 10.
 */
export function renewalDueAt(certPem: string): number {
  const { notBefore, notAfter } = validityOf(certPem);
  const issued = Math.min(notAfter, notBefore + BACKDATE_MS);
  return issued + (notAfter - issued) * RENEW_AFTER_FRACTION;
}

/** setTimeout cannot wait longer than 2^31-1 ms (~24.8 days); longer waits are re-checked. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A human reading of a remaining time ("2d 3h", "4m 10s", "expired"), for logs. */
export function describeRemaining(ms: number): string {
  if (ms <= 0) return 'expired';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}
