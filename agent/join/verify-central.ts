import { createHash, X509Certificate } from 'node:crypto';
import { connect, type PeerCertificate, type DetailedPeerCertificate } from 'node:tls';

/**
 * First contact with the central, before anything is sent: open a TLS connection without trusting
 * anything, look for a certificate in the presented chain whose SHA-256 fingerprint is the one the
 * join token carries, and check that the server's own certificate was issued by it. Returns the CA
 * (PEM) to pin from then on. A mismatch means a man in the middle (or the wrong central): refuse.
 */
export async function fetchPinnedCa(centralUrl: string, expectedFingerprint: string): Promise<string> {
  const u = new URL(centralUrl);
  if (u.protocol !== 'https:') throw new Error(`the central URL must be https:// (got ${u.protocol}); the agent never joins over plain HTTP`);
  const port = Number(u.port || 443);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const chain = await new Promise<DetailedPeerCertificate>((resolve, reject) => {
    const sock = connect({ host, port, servername: /^[\d.]+$|:/.test(host) ? undefined : host, rejectUnauthorized: false }, () => {
      const cert = sock.getPeerCertificate(true);
      sock.end();
      resolve(cert);
    });
    sock.setTimeout(15_000, () => sock.destroy(new Error(`timed out connecting to ${host}:${port}`)));
    sock.on('error', (e) => reject(new Error(`cannot reach the central at ${host}:${port}: ${e.message}`)));
  });
  const certs: PeerCertificate[] = [];
  let c: DetailedPeerCertificate | undefined = chain;
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    certs.push(c);
    c = c.issuerCertificate;
  }
  const want = expectedFingerprint.toLowerCase();
  const ca = certs.find((x) => createHash('sha256').update(x.raw).digest('hex') === want);
  if (!ca) {
    throw new Error(
      `the central at ${host}:${port} did not present the CA whose fingerprint the join token carries (sha256:${want}); ` +
        'refusing to send anything: this may be a man in the middle or the wrong central',
    );
  }
  const caCert = new X509Certificate(ca.raw);
  const leaf = new X509Certificate(chain.raw);
  if (!leaf.checkIssued(caCert) || !leaf.verify(caCert.publicKey)) {
    throw new Error(`the central's server certificate was not issued by the pinned CA; refusing to join`);
  }
  return caCert.toString();
}
