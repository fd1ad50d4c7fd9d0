/**
 * A join token carries the one-time bearer token and the SHA-256 fingerprint of the central's CA
 * certificate (hex, of its DER encoding), so the agent can verify the central before sending anything
 * (like kubeadm's discovery-token-ca-cert-hash). Format: `ulj1.<bearer>.<sha256 hex>`.
 */
export function formatJoinToken(bearer: string, caFingerprint: string): string {
  return `ulj1.${bearer}.${caFingerprint}`;
}

export function parseJoinToken(text: string): { bearer: string; caFingerprint: string } {
  const m = /^ulj1\.(ul_[0-9a-f]{16}_[A-Za-z0-9_-]{43})\.([0-9a-f]{64})$/.exec(text.trim());
  if (!m) throw new Error('not a valid join token (expected ulj1.<token>.<ca-sha256>, as printed by "underlay token create --role agent-join")');
  return { bearer: m[1], caFingerprint: m[2] };
}
