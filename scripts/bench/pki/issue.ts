/**
 * Benchmark: machine CSR → certificate issued, per second, through the central's service (the
 * `machine-csr` path: membership and SAN checks, signing, one durable store commit per answer).
 *   node dist/scripts/bench/pki/issue.js [--machines 1000] [--key ec-p256|rsa-3072|ed25519] [--file]
 * --file: the embedded file store in a temp dir (fsync'd commits) instead of the in-memory store.
 * Every machine has its own openssl-made P-256 key and CSR (made before the clock starts). The agent join
 * time before/after a library change is scripts/bench/agents (join phase); joins still use the
 * control-plane CA (forge + native RSA), unchanged by issue 16, so sign.ts compares the signing cost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { silentLogger } from '../../../shared/log/logger.js';
import { MACHINES, machinesCollection } from '../../../central/machines/resources.js';
import { KeySeal } from '../../../central/service-pki/key-seal.js';
import { opensslCsr } from './openssl-csr.js';
import { certRequestsCollection, issuedCertsCollection, serviceCasCollection } from '../../../central/service-pki/resources.js';
import { ServicePki } from '../../../central/service-pki/service.js';
import { CA_KEY_TYPES, type CaKeyType } from '../../../central/service-pki/x509.js';
import { FileStore } from '../../../central/store/file-store.js';
import { MemoryStore } from '../../../central/store/memory-store.js';
import type { Store } from '../../../central/store/types.js';
import { randomBytes } from 'node:crypto';

const { values: a } = parseArgs({ options: { machines: { type: 'string', default: '1000' }, key: { type: 'string', default: 'ec-p256' }, file: { type: 'boolean', default: false } } });
const N = Number(a.machines);
const keyType = a.key as CaKeyType;
if (!CA_KEY_TYPES.includes(keyType)) throw new Error(`--key: one of ${CA_KEY_TYPES.join(', ')}`);

const dir = mkdtempSync(join(tmpdir(), 'underlay-bench-pki-'));
const collections = [machinesCollection, serviceCasCollection, issuedCertsCollection, certRequestsCollection];
const store: Store = a.file ? await FileStore.open({ dir: join(dir, 'data'), collections }) : new MemoryStore(collections);
try {
  const pki = new ServicePki(store, new KeySeal(randomBytes(32)), { isMember: () => true }, { logger: silentLogger });
  await pki.createCa({ name: 'bench', keyType, ttl: '365d', maxCertTtl: '30d' });
  const at = new Date().toISOString();
  const csrs: string[] = [];
  for (let i = 0; i < N; i++) {
    const ip = `198.18.${(i >> 8) & 255}.${i & 255}`;
    await store.put(MACHINES, { id: `m${i}`, name: `m${i}`, site: 'dc1', macs: [], profiles: [], params: {}, facts: {}, bootenv: 'discovery', state: 'ready', netboot: true, address: ip, createdAt: at, updatedAt: at });
    csrs.push(opensslCsr(`m${i}`, [`m${i}`, ip]).csrPem);
  }
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${N} machines, ${keyType} CA, ${a.file ? 'file' : 'memory'} store`);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const r = await pki.answerCsr({ request: `bench-${i.toString().padStart(8, '0')}`, machine: `m${i}`, ca: 'bench', csr: csrs[i] }, 'dc1');
    if (r.state !== 'issued') throw new Error(`m${i}: ${r.reason}`);
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`issued ${N} certificates in ${s.toFixed(2)} s: ${(N / s).toFixed(0)} /s`);
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
