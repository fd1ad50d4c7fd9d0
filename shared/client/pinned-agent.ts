import { Agent } from 'node:https';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';

/** "AB:CD:…" or "abcd…" → "ABCD…". */
export function normalizeFingerprint(fp: string): string {
  return fp.replace(/:/g, '').toUpperCase();
}

/**
 * An HTTPS agent that trusts exactly one leaf certificate, by its SHA-256 fingerprint (a BMC's
 * self-signed certificate). The socket is handed to the request only after the handshake showed the
 * pinned certificate, so nothing (no credentials) is written to a server that is not the pinned one.
 */
export class PinnedAgent extends Agent {
  constructor(private readonly fingerprint256: string) {
    super({ keepAlive: false });
  }

  override createConnection(options: ConnectionOptions, done: (err: Error | null, socket?: Duplex) => void): Duplex | undefined {
    const pin = normalizeFingerprint(this.fingerprint256);
    const socket: TLSSocket = connect({ ...options, rejectUnauthorized: false });
    socket.once('error', (e) => done(e));
    socket.once('secureConnect', () => {
      const got = normalizeFingerprint(socket.getPeerCertificate().fingerprint256 ?? '');
      if (got !== pin) {
        socket.destroy();
        return done(Object.assign(new Error(`the server's certificate (SHA-256 ${got || 'none'}) is not the pinned one`), { code: 'CERT_PIN_MISMATCH' }));
      }
      done(null, socket);
    });
    return undefined;
  }
}
