import { generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';

/**
 * Makes an RSA-2048 key and a CSR for it on this host (Node generates the key, node-forge builds and
 * signs the CSR): what an agent sends at join. The private key never leaves the caller.
 */
export function makeCsr(commonName: string): { keyPem: string; csrPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const priv = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(priv.n, priv.e);
  csr.setSubject([{ name: 'commonName', value: commonName }]);
  csr.sign(priv, forge.md.sha256.create());
  return { keyPem, csrPem: forge.pki.certificationRequestToPem(csr) };
}
