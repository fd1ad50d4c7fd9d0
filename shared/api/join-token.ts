/**
 * A join token carries the one-time bearer token, the SHA-256 fingerprint of the central's CA
 * certificate (hex, of its DER encoding), so the agent can verify the central before sending anything
 * (like kubeadm's discovery-token-ca-cert-hash), and optionally the URLs of the central's replicas, so an
 * agent joined with the token alone knows every replica. Format: `ulj1.<bearer>.<sha256 hex>` or
 * `ulj1.<bearer>.<sha256 hex>.<base64url of the comma-separated URLs>` (older tokens have no URLs).
 * The URLs need no protection of their own: the agent verifies whichever it dials against the CA.
 */
export function formatJoinToken(bearer: string, caFingerprint: string, centralUrls: string[] = []): string {
  const base = `ulj1.${bearer}.${caFingerprint}`;
  return centralUrls.length === 0 ? base : `${base}.${Buffer.from(centralUrls.join(','), 'utf8').toString('base64url')}`;
}

/** Longest URL list a token carries (encoded), so a pasted token stays a line. */
const MAX_URLS_CHARS = 2048;

export function parseJoinToken(text: string): { bearer: string; caFingerprint: string; centralUrls: string[] } {
  const m = /^ulj1\.(ul_[0-9a-f]{16}_[A-Za-z0-9_-]{43})\.([0-9a-f]{64})(?:\.([A-Za-z0-9_-]{1,2048}))?$/.exec(text.trim());
  if (!m) throw new Error('not a valid join token (expected ulj1.<token>.<ca-sha256>[.<urls>], as printed by "underlay token create --role agent-join")');
  const urls = m[3] === undefined ? '' : Buffer.from(m[3], 'base64url').toString('utf8');
  if (urls.length > MAX_URLS_CHARS || /[^\x21-\x7e]/.test(urls)) throw new Error('not a valid join token: its central URLs are not readable');
  return { bearer: m[1], caFingerprint: m[2], centralUrls: urls === '' ? [] : urls.split(',') };
}
