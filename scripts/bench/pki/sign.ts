/**
 * Micro-benchmark: issuing one leaf certificate from a CSR with each X.509 path the central has.
 *   node dist/scripts/bench/pki/sign.js [N]        (N issuances per path, default 200)
 * - forge + native RSA: the control-plane CA (central/pki/ca.ts: forge builds the certificate, Node's
 *   RSA signs), as used by agent join and renewal; RSA-3072 CA, RSA-2048 agent CSR.
 * - @peculiar/x509 over WebCrypto: the service CAs (central/service-pki/x509.ts) with each key type, a
 *   P-256 machine CSR (what the runner's openssl makes).
 * Prints ms per issuance and issuances per second, with the load average (a busy machine skews both).
 */
import { loadavg } from 'node:os';
import { createCa, signCsr } from '../../../central/pki/ca.js';
import { CA_KEY_TYPES, createServiceCa, readCsr, signLeaf } from '../../../central/service-pki/x509.js';
import { makeCsr } from '../../../shared/pki/csr.js';
import { opensslCsr } from './openssl-csr.js';

const N = Number(process.argv[2] ?? 200);

async function time(label: string, fn: () => unknown | Promise<unknown>): Promise<void> {
  await fn(); // warm-up
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await fn();
  const ms = Number(process.hrtime.bigint() - start) / 1e6 / N;
  console.log(`${label.padEnd(44)} ${ms.toFixed(3).padStart(9)} ms/issue ${(1000 / ms).toFixed(0).padStart(7)} /s`);
}

console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${N} issuances per path`);
const controlPlane = createCa('bench control-plane CA');
const agentCsr = makeCsr('agent').csrPem;
await time('forge + native RSA-3072 (agent join)', () => signCsr(controlPlane, agentCsr, { commonName: 'agent', sans: ['agent.example'], usage: 'client', days: 30 }));
const machineCsr = await readCsr(opensslCsr('m1', ['m1', '198.18.0.10']).csrPem);
for (const kt of CA_KEY_TYPES) {
  const ca = await createServiceCa(`bench ${kt}`, kt, 365 * 86_400_000);
  await time(`@peculiar/x509 ${kt} CA (machine CSR)`, () => signLeaf(ca, machineCsr, { commonName: 'm1', sans: ['m1', '198.18.0.10'], lifetimeMs: 86_400_000 }));
}
await time('@peculiar/x509 parse + verify a P-256 CSR', () => readCsr(machineCsr.csr.toString('pem')));
console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
