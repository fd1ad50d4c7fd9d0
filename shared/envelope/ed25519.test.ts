import sodium from 'libsodium-wrappers';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkSigningKey, ed25519, ed25519Sign, ed25519Verify, libsodiumEd25519, nodeEd25519 } from './ed25519.js';

let keys: { publicKey: Uint8Array; privateKey: Uint8Array };
beforeAll(async () => {
  await sodium.ready;
  keys = sodium.crypto_sign_keypair();
});

const message = Buffer.from('{"id":"task-1","payload":{"message":"hi ✓"},"seq":7}', 'utf8');

it('uses native libsodium on this platform (sodium-native has a prebuilt binary for linux x64)', () => {
  expect(libsodiumEd25519).not.toBeNull();
  expect(ed25519.name).toBe('libsodium');
});

describe.each([
  ['libsodium (sodium-native)', () => libsodiumEd25519!],
  ['node crypto', () => nodeEd25519],
])('Ed25519 through %s on libsodium keys', (_name, impl) => {
  it('signs byte-identically to libsodium-wrappers crypto_sign_detached', () => {
    const theirs = Buffer.from(sodium.crypto_sign_detached(message, keys.privateKey));
    expect(impl().sign(message, keys.privateKey).equals(theirs)).toBe(true);
  });

  it('verifies what libsodium-wrappers signed, and libsodium-wrappers verifies what it signed', () => {
    expect(impl().verify(sodium.crypto_sign_detached(message, keys.privateKey), message, keys.publicKey)).toBe(true);
    expect(sodium.crypto_sign_verify_detached(impl().sign(message, keys.privateKey), message, keys.publicKey)).toBe(true);
  });

  it('rejects a tampered message byte, a tampered signature byte and another key', () => {
    const sig = impl().sign(message, keys.privateKey);
    for (let i = 0; i < message.length; i += 7) {
      const bad = Buffer.from(message);
      bad[i] ^= 0x01;
      expect(impl().verify(sig, bad, keys.publicKey)).toBe(false);
    }
    const badSig = Buffer.from(sig);
    badSig[10] ^= 0x80;
    expect(impl().verify(badSig, message, keys.publicKey)).toBe(false);
    expect(impl().verify(sig, message, sodium.crypto_sign_keypair().publicKey)).toBe(false);
  });
});

describe('ed25519Sign / ed25519Verify', () => {
  it('a short signature is false, not a throw; keys of the wrong size or an inconsistent secret key are refused', () => {
    const sig = ed25519Sign(message, keys.privateKey);
    expect(ed25519Verify(sig, message, keys.publicKey)).toBe(true);
    expect(ed25519Verify(sig.subarray(0, 63), message, keys.publicKey)).toBe(false);
    expect(() => ed25519Verify(sig, message, new Uint8Array(33))).toThrow(/32 bytes/);
    expect(() => ed25519Sign(message, keys.privateKey.slice(0, 32))).toThrow(/64 bytes/);
    const inconsistent = new Uint8Array(keys.privateKey);
    inconsistent[40] ^= 0x01;
    expect(() => checkSigningKey(inconsistent)).toThrow(/does not match its seed/);
  });
});
