// The runner's key and CSR (images/discovery/cert.sh) made with openssl on this host: the PKI bench's
// simulated machines and central/service-pki/service.test.ts use it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A key and CSR made by openssl as the machine runner makes them (images/discovery/cert.sh): EC P-256 unless `keyArgs` says otherwise. */
export function opensslCsr(commonName: string, sans: string[], keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']): { keyPem: string; csrPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ul-csr-'));
  try {
    const alt = sans.map((s) => (/^[\d.]+$|:/.test(s) ? `IP:${s}` : `DNS:${s}`)).join(',');
    const csrPem = execFileSync('openssl', ['req', '-new', ...keyArgs, '-nodes', '-keyout', join(dir, 'key.pem'), '-subj', `/CN=${commonName}`, ...(alt ? ['-addext', `subjectAltName=${alt}`] : [])], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'), csrPem };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
