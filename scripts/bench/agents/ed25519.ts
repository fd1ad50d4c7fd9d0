/**
 * Micro-benchmark: Ed25519 sign and verify of a typical task envelope with each implementation the
 * project can use (shared/envelope/ed25519.ts): libsodium-wrappers (WASM), Node's crypto (OpenSSL) and
 * native libsodium (sodium-native).
 *
 *   npx tsc -p . && node dist/scripts/bench/agents/ed25519.js [--rounds 5000]
 */
import { parseArgs } from 'node:util';
import sodium from 'libsodium-wrappers';
import { canonicalJson } from '../../../shared/envelope/canonical.js';
import { libsodiumEd25519, nodeEd25519 } from '../../../shared/envelope/ed25519.js';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5000' } } });
const N = Number(args.rounds);

await sodium.ready;
const keys = sodium.crypto_sign_keypair();
const now = Date.now();
const message = Buffer.from(canonicalJson({
  v: 1, id: '0b6f5d1e-4a5c-4b53-9a83-3f3c1b2d8e11', site: 'bench-1', agent: 'f2b4c9d0-7a1e-4c3b-8e5f-6a7b8c9d0e1f', seq: 12, kind: 'ping',
  machine: null, payload: {}, issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + 3_600_000).toISOString(),
}));
const signature = Buffer.from(sodium.crypto_sign_detached(message, keys.privateKey));

function time(label: string, fn: () => unknown): void {
  for (let i = 0; i < Math.min(500, N); i++) fn(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < N; i++) fn();
  console.log(`${label.padEnd(34)} ${((performance.now() - t0) * 1000 / N).toFixed(1)} µs`);
}

console.log(`${message.length}-byte envelope, ${N} rounds each`);
time('libsodium-wrappers (WASM) sign', () => sodium.crypto_sign_detached(message, keys.privateKey));
time('libsodium-wrappers (WASM) verify', () => sodium.crypto_sign_verify_detached(signature, message, keys.publicKey));
time('node:crypto sign', () => nodeEd25519.sign(message, keys.privateKey));
time('node:crypto verify', () => nodeEd25519.verify(signature, message, keys.publicKey));
if (libsodiumEd25519) {
  time('sodium-native sign', () => libsodiumEd25519!.sign(message, keys.privateKey));
  time('sodium-native verify', () => libsodiumEd25519!.verify(signature, message, keys.publicKey));
} else console.log('sodium-native: no binary for this platform');
