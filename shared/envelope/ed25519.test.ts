import sodium from 'libsodium-wrappers';
import { beforeAll, describe, expect, it } from 'vitest';
import { ed25519Sign, ed25519SigningKey, ed25519Verify, ed25519VerifyKey } from './ed25519.js';

let keys: { publicKey: Uint8Array; privateKey: Uint8Array };
beforeAll(async () => {
  await sodium.ready;
  keys = sodium.crypto_sign_keypair();
});

const message = Buffer.from('{"id":"task-1","payload":{"message":"hi ✓"},"seq":7}', 'utf8');

describe('native Ed25519 on libsodium keys', () => {
  it('signs byte-identically to libsodium crypto_sign_detached (64-byte key, seed, key object)', () => {
    const theirs = Buffer.from(sodium.crypto_sign_detached(message, keys.privateKey));
    expect(ed25519Sign(message, keys.privateKey).equals(theirs)).toBe(true);
    expect(ed25519Sign(message, keys.privateKey.slice(0, 32)).equals(theirs)).toBe(true);
    expect(ed25519Sign(message, ed25519SigningKey(keys.privateKey)).equals(theirs)).toBe(true);
  });

  it('verifies what libsodium signed, and libsodium verifies what it signed', () => {
    const theirs = sodium.crypto_sign_detached(message, keys.privateKey);
    expect(ed25519Verify(theirs, message, keys.publicKey)).toBe(true);
    expect(ed25519Verify(theirs, message, ed25519VerifyKey(keys.publicKey))).toBe(true);
    expect(sodium.crypto_sign_verify_detached(ed25519Sign(message, keys.privateKey), message, keys.publicKey)).toBe(true);
  });

  it('rejects a tampered message byte, a tampered signature byte, another key and a short signature', () => {
    const sig = ed25519Sign(message, keys.privateKey);
    for (let i = 0; i < message.length; i += 7) {
      const bad = Buffer.from(message);
      bad[i] ^= 0x01;
      expect(ed25519Verify(sig, bad, keys.publicKey)).toBe(false);
    }
    const badSig = Buffer.from(sig);
    badSig[10] ^= 0x80;
    expect(ed25519Verify(badSig, message, keys.publicKey)).toBe(false);
    expect(ed25519Verify(sig, message, sodium.crypto_sign_keypair().publicKey)).toBe(false);
    expect(ed25519Verify(sig.subarray(0, 63), message, keys.publicKey)).toBe(false);
  });

  it('refuses keys of the wrong size and a secret key whose public half does not match its seed', () => {
    expect(() => ed25519SigningKey(new Uint8Array(31))).toThrow(/32 or 64 bytes/);
    expect(() => ed25519VerifyKey(new Uint8Array(33))).toThrow(/32 bytes/);
    const inconsistent = new Uint8Array(keys.privateKey);
    inconsistent[40] ^= 0x01;
    expect(() => ed25519SigningKey(inconsistent)).toThrow(/does not match its seed/);
  });
});
