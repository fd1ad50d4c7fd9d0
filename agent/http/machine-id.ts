import { createHash, createHmac } from 'node:crypto';

/**
 * The machine id the agent proposes for a MAC the central does not know yet: deterministic (the same
 * across agent restarts and reboots), so the discovery image and the central agree on it. Not a
 * credential: knowing it gives nothing (machine credentials are per-boot sessions, agent/http/boot-sessions.ts).
 */
export class MachineIds {
  constructor(private readonly secret: Buffer) {}

  proposed(mac: string): string {
    const h = createHmac('sha256', this.secret).update(`machine-id:${mac.toLowerCase()}`).digest('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }
}

/** The key for proposed machine ids, derived from the agent's seal private key (stable, never leaves the host). */
export function machineIdSecretFrom(sealPrivateKey: Uint8Array): Buffer {
  return createHash('sha256').update('underlay-machine-tokens').update(sealPrivateKey).digest();
}
