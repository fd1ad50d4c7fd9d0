import sodium from 'libsodium-wrappers';

/**
 * Opens a secret param value sealed to this agent (`{ "$sealed": base64 }`, crypto_box_seal); any other
 * value is returned as it is. Libsodium must be ready. The plaintext is never stored or logged.
 */
export function secretOpener(sealKey: { publicKey: Uint8Array; privateKey: Uint8Array }): (v: unknown) => unknown {
  return (v) => {
    const sealed = (v as { $sealed?: unknown } | null)?.$sealed;
    if (typeof sealed !== 'string') return v;
    const clear = sodium.crypto_box_seal_open(Buffer.from(sealed, 'base64'), sealKey.publicKey, sealKey.privateKey);
    return JSON.parse(Buffer.from(clear).toString('utf8'));
  };
}
