import { constants, createHash, createPrivateKey, generateKeyPairSync, privateEncrypt, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { BACKDATE_MS } from '../../shared/pki/renewal.js';

/**
 * The central's embedded certificate authority (node-forge; RSA only, as forge signs nothing else).
 * Keys are generated with Node's native RSA (fast) and handed to forge as PEM.
 */
export interface KeyPairPem {
  keyPem: string;
  certPem: string;
}

export function generateRsaKeyPem(bits = 2048): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** DER prefix of a SHA-256 DigestInfo (RFC 8017, 9.2 note 1). */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');
const keyObjects = new Map<string, KeyObject>();

/**
 * forge builds and encodes the certificate; the RSA signature itself (RSASSA-PKCS1-v1_5 over forge's
 * SHA-256 digest) is made by Node's native crypto: forge's pure-JS modular exponentiation made each
 * signature with the 3072-bit CA key cost ~150 ms, which capped agent joins at a few per second.
 */
function nativeSigner(keyPem: string): forge.pki.rsa.PrivateKey {
  let key = keyObjects.get(keyPem);
  if (!key) {
    key = createPrivateKey(keyPem);
    keyObjects.set(keyPem, key);
  }
  const k = key;
  return {
    sign: (md: forge.md.MessageDigest) => {
      const digest = Buffer.from(md.digest().getBytes(), 'binary');
      return privateEncrypt({ key: k, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA256_DIGEST_INFO, digest])).toString('binary');
    },
  } as unknown as forge.pki.rsa.PrivateKey;
}

function serial(): string {
  // Positive 128-bit serial: leading byte 0x01..0x7f. A zero leading byte would be dropped in the
  // encoding and a following byte >= 0x80 would then make the DER integer negative.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f || 0x01;
  return b.toString('hex');
}

function publicKeyOf(keyPem: string): forge.pki.PublicKey {
  const priv = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  return forge.pki.setRsaPublicKey(priv.n, priv.e);
}

export function createCa(commonName: string, years = 10): KeyPairPem {
  const keyPem = generateRsaKeyPem(3072);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKeyOf(keyPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 5 * 60_000);
  cert.validity.notAfter = new Date(Date.now() + years * 365 * 86_400_000);
  const attrs = [{ name: 'commonName', value: commonName }, { name: 'organizationName', value: 'Underlay' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(nativeSigner(keyPem), forge.md.sha256.create());
  return { keyPem, certPem: certToPem(cert) };
}

/** PEM with LF line endings: forge writes CRLF, which some PEM readers (Python's ssl via Ansible's open_url) refuse. */
function certToPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

export interface IssueOptions {
  commonName: string;
  /** DNS names and IP addresses. */
  sans?: string[];
  /** Lifetime in days (default 397), or `lifetimeMs` when given. */
  days?: number;
  lifetimeMs?: number;
  usage: 'server' | 'client' | 'both';
}

function buildLeaf(ca: KeyPairPem, publicKey: forge.pki.PublicKey, opts: IssueOptions): string {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - BACKDATE_MS);
  cert.validity.notAfter = new Date(Date.now() + (opts.lifetimeMs ?? (opts.days ?? 397) * 86_400_000));
  cert.setSubject([{ name: 'commonName', value: opts.commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = (opts.sans ?? []).map((s) => (isIP(s) ? { type: 7, ip: s } : { type: 2, value: s }));
  const extensions: object[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: opts.usage !== 'client', clientAuth: opts.usage !== 'server' },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ];
  if (altNames.length > 0) extensions.push({ name: 'subjectAltName', altNames });
  cert.setExtensions(extensions);
  cert.sign(nativeSigner(ca.keyPem), forge.md.sha256.create());
  return certToPem(cert);
}

/** Issues a leaf certificate for a key generated here (the central's own server certificate). */
export function issueWithNewKey(ca: KeyPairPem, opts: IssueOptions): KeyPairPem {
  const keyPem = generateRsaKeyPem();
  return { keyPem, certPem: buildLeaf(ca, publicKeyOf(keyPem), opts) };
}

/**
 * Signs a CSR made elsewhere (an agent's): the key never leaves its host. The CSR's own subject and
 * extensions are ignored; the CA decides the name, SANs and usage.
 */
export function signCsr(ca: KeyPairPem, csrPem: string, opts: IssueOptions): string {
  let csr: ReturnType<typeof forge.pki.certificationRequestFromPem>;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (e) {
    throw new Error(`not a PEM certificate signing request: ${(e as Error).message}`);
  }
  if (!csr.verify()) throw new Error('the CSR signature does not verify');
  if (!csr.publicKey) throw new Error('the CSR has no public key');
  return buildLeaf(ca, csr.publicKey, opts);
}

/** SHA-256 fingerprint (hex, lower case) of a certificate's DER encoding. */
export function fingerprint(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

/** The SANs a certificate covers, as plain names/addresses. */
export function sansOf(certPem: string): string[] {
  const alt = new X509Certificate(certPem).subjectAltName ?? '';
  return alt
    .split(', ')
    .map((s) => s.replace(/^(DNS|IP Address):/, ''))
    .filter(Boolean);
}
