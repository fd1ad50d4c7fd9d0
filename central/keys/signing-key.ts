import sodium from 'libsodium-wrappers';

export interface SigningKeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

/** The central's Ed25519 task-signing key (libsodium). */
export async function generateSigningKey(): Promise<SigningKeyPair> {
  await sodium.ready;
  const kp = sodium.crypto_sign_keypair();
  return { publicKey: kp.publicKey, privateKey: kp.privateKey };
}

export function encodeSigningKey(k: SigningKeyPair): string {
  return JSON.stringify({
    alg: 'ed25519',
    publicKey: Buffer.from(k.publicKey).toString('base64'),
    privateKey: Buffer.from(k.privateKey).toString('base64'),
  });
}

export function decodeSigningKey(text: string): SigningKeyPair {
  const j = JSON.parse(text) as { alg: string; publicKey: string; privateKey: string };
  if (j.alg !== 'ed25519') throw new Error(`unsupported signing key algorithm ${j.alg}`);
  const publicKey = new Uint8Array(Buffer.from(j.publicKey, 'base64'));
  const privateKey = new Uint8Array(Buffer.from(j.privateKey, 'base64'));
  if (publicKey.length !== 32 || privateKey.length !== 64) throw new Error('signing key file is corrupt (wrong key lengths)');
  return { publicKey, privateKey };
}
