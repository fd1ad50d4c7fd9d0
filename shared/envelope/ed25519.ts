import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';

/**
 * Ed25519 detached signatures for task envelopes, on keys made and stored by libsodium (64-byte secret
 * key = seed then public key; 32-byte public key).
 *
 * Two implementations, the same bytes (Ed25519 is deterministic; unit-tested against each other and
 * against libsodium-wrappers):
 * - `libsodium`: native libsodium through sodium-native (prebuilt for linux x64/arm64 and others).
 *   Measured on the project's 2-core VM: sign ≈ 21 µs, verify ≈ 59 µs.
 * - `node`: Node's crypto (OpenSSL) on key objects built once from the same keys: sign ≈ 42 µs, verify
 *   ≈ 122 µs. Used only where sodium-native has no binary for the platform.
 * libsodium-wrappers (WASM), used before, takes ≈ 56 µs / ≈ 133 µs; it still generates the keys and does
 * the sealed boxes. See docs/decisions.md.
 */
export interface Ed25519 {
  readonly name: 'libsodium' | 'node';
  sign(message: Uint8Array, secretKey: Uint8Array): Buffer;
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** DER prefix of an SPKI Ed25519 public key; the 32-byte key follows. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const signingKeys = new WeakMap<Uint8Array, KeyObject>();
const verifyKeys = new WeakMap<Uint8Array, KeyObject>();

function nodeSigningKey(secretKey: Uint8Array): KeyObject {
  let key = signingKeys.get(secretKey);
  if (!key) signingKeys.set(secretKey, (key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' })));
  return key;
}

function nodeVerifyKey(publicKey: Uint8Array): KeyObject {
  let key = verifyKeys.get(publicKey);
  if (!key) verifyKeys.set(publicKey, (key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })));
  return key;
}

export const nodeEd25519: Ed25519 = {
  name: 'node',
  sign: (message, secretKey) => sign(null, message, nodeSigningKey(secretKey)),
  verify: (signature, message, publicKey) => verify(null, message, nodeVerifyKey(publicKey), signature),
};

interface SodiumNative {
  crypto_sign_detached(signature: Buffer, message: Uint8Array, secretKey: Uint8Array): void;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

function loadSodiumNative(): SodiumNative | null {
  try {
    return createRequire(import.meta.url)('sodium-native') as SodiumNative;
  } catch {
    return null; // no prebuilt binary for this platform: the node implementation serves
  }
}

const sodiumNative = loadSodiumNative();
export const libsodiumEd25519: Ed25519 | null = sodiumNative && {
  name: 'libsodium',
  sign(message, secretKey) {
    const signature = Buffer.allocUnsafe(64);
    sodiumNative.crypto_sign_detached(signature, message, secretKey);
    return signature;
  },
  verify: (signature, message, publicKey) => sodiumNative.crypto_sign_verify_detached(signature, message, publicKey),
};

/** The implementation in use: libsodium when its native binding loads, else Node's crypto. */
export const ed25519: Ed25519 = libsodiumEd25519 ?? nodeEd25519;

const checkedSecretKeys = new WeakSet<Uint8Array>();

/**
 * Refuses a secret key that is not a libsodium Ed25519 key: 64 bytes whose public half is the one its
 * seed derives (libsodium would sign with the stored half and produce signatures no one can verify).
 * Checked once per key object.
 */
export function checkSigningKey(secretKey: Uint8Array): void {
  if (checkedSecretKeys.has(secretKey)) return;
  if (secretKey.length !== 64) throw new Error(`an Ed25519 secret key (libsodium) is 64 bytes, not ${secretKey.length}`);
  const derived = createPublicKey(nodeSigningKey(secretKey)).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  if (!derived.equals(secretKey.subarray(32))) throw new Error('Ed25519 secret key is inconsistent: its public half does not match its seed');
  checkedSecretKeys.add(secretKey);
}

/** A detached Ed25519 signature (64 bytes) over `message`. */
export function ed25519Sign(message: Uint8Array, secretKey: Uint8Array): Buffer {
  checkSigningKey(secretKey);
  return ed25519.sign(message, secretKey);
}

/** Whether `signature` is a valid Ed25519 signature of `message`; false (never a throw) for malformed input. */
export function ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  if (publicKey.length !== 32) throw new Error(`an Ed25519 public key is 32 bytes, not ${publicKey.length}`);
  return ed25519.verify(signature, message, publicKey);
}
