import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Per-machine tokens rendered into boot configuration: `<mac hex>-<hmac>`, where the HMAC (SHA-256,
 * keyed by a secret only this agent holds) binds the token to the MAC. Self-describing (no table to
 * persist), unforgeable without the agent's secret, and never derived from the source IP.
 */
export class MachineTokens {
  constructor(private readonly secret: Buffer) {}

  private mac(mac: string): string {
    return createHmac('sha256', this.secret).update(`machine-token:${mac.toLowerCase()}`).digest('base64url').slice(0, 32);
  }

  issue(mac: string): string {
    return `${mac.toLowerCase().replace(/:/g, '')}-${this.mac(mac)}`;
  }

  /** The MAC a token was issued for, or null if the token is not genuine. */
  verify(token: string | undefined | null): string | null {
    if (!token) return null;
    const m = /^([0-9a-f]{12})-([A-Za-z0-9_-]{32})$/.exec(token);
    if (!m) return null;
    const mac = m[1].match(/../g)!.join(':');
    const want = Buffer.from(this.mac(mac));
    const got = Buffer.from(m[2]);
    return want.length === got.length && timingSafeEqual(want, got) ? mac : null;
  }

  /**
   * The machine id the agent proposes for a MAC the central does not know yet: deterministic (the same
   * across agent restarts and reboots), so the discovery image and the central agree on it.
   */
  proposedMachineId(mac: string): string {
    const h = createHmac('sha256', this.secret).update(`machine-id:${mac.toLowerCase()}`).digest('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }
}

/** The agent's token secret, derived from its own seal private key (stable, never leaves the host). */
export function tokenSecretFrom(sealPrivateKey: Uint8Array): Buffer {
  return createHash('sha256').update('underlay-machine-tokens').update(sealPrivateKey).digest();
}
