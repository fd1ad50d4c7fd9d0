import { randomBytes, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { isIP } from 'node:net';
import './reflect-metadata.js';
import * as x509 from '@peculiar/x509';
import { BACKDATE_MS } from '../../shared/pki/renewal.js';
import { InvalidError } from '../../shared/errors/domain-errors.js';

/**
 * Per-service CAs ("trust me") with @peculiar/x509 over Node's WebCrypto: EC P-256 (default), RSA-3072
 * or Ed25519 keys, certificates from CSRs, and CRLs (node-forge signs RSA only and makes no CRLs;
 * docs/decisions.md "Service CAs: @peculiar/x509"). Everything here is pure: keys in, PEM out.
 */
x509.cryptoProvider.set(webcrypto as never);
type CryptoKey = webcrypto.CryptoKey;
type Alg = { name: string; [k: string]: unknown };
const subtle = webcrypto.subtle;

export const CA_KEY_TYPES = ['ec-p256', 'rsa-3072', 'ed25519'] as const;
export type CaKeyType = (typeof CA_KEY_TYPES)[number];

const ALGS: Record<CaKeyType, { gen: Alg; sign: Alg }> = {
  'ec-p256': { gen: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  'rsa-3072': {
    gen: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
  },
  ed25519: { gen: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
};

export interface ServiceCaKeys {
  keyType: CaKeyType;
  certPem: string;
  keyPem: string;
}

/** Positive serial in hex (leading byte < 0x80), 128 bits. */
export function newSerial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  if (b[0] === 0) b[0] = 1;
  return b.toString('hex');
}

const toPem = (der: ArrayBuffer, label: string) => `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
const fromPem = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
const pemOf = (c: { rawData: ArrayBuffer }, label: string) => toPem(c.rawData, label);

const keyCache = new Map<string, CryptoKey>();
async function signingKey(ca: ServiceCaKeys): Promise<CryptoKey> {
  let k = keyCache.get(ca.keyPem);
  if (!k) {
    k = (await subtle.importKey('pkcs8', fromPem(ca.keyPem), ALGS[ca.keyType].gen as never, false, ['sign'])) as CryptoKey;
    if (keyCache.size > 256) keyCache.clear();
    keyCache.set(ca.keyPem, k);
  }
  return k;
}

/** A new self-signed CA: `CN=<commonName>, O=Underlay`, basicConstraints CA (pathlen 0), keyCertSign + cRLSign. */
export async function createServiceCa(commonName: string, keyType: CaKeyType, lifetimeMs: number): Promise<ServiceCaKeys> {
  const keys = (await subtle.generateKey(ALGS[keyType].gen as never, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(),
    name: [{ CN: [commonName] }, { O: ['Underlay'] }],
    notBefore: new Date(Date.now() - 5 * 60_000),
    notAfter: new Date(Date.now() + lifetimeMs),
    keys,
    signingAlgorithm: ALGS[keyType].sign,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await subtle.exportKey('pkcs8', keys.privateKey as never);
  return { keyType, certPem: pemOf(cert, 'CERTIFICATE'), keyPem: toPem(pkcs8 as ArrayBuffer, 'PRIVATE KEY') };
}

/** What a CSR asks for: its common name and the DNS names / IP addresses of its SAN extension. */
export interface CsrRequest {
  commonName?: string;
  sans: string[];
  csr: x509.Pkcs10CertificateRequest;
}

/** Parses and verifies a PEM CSR (its signature proves the requester holds the key). InvalidError otherwise. */
export async function readCsr(csrPem: string): Promise<CsrRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem.trim());
  } catch (e) {
    throw new InvalidError(`not a PEM certificate signing request: ${(e as Error).message}`);
  }
  let ok = false;
  try {
    ok = await csr.verify();
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidError('the CSR signature does not verify (or its key type is not supported)');
  const cn = csr.subjectName.getField('CN')[0];
  const sans: string[] = [];
  for (const ext of csr.extensions) {
    if (ext instanceof x509.SubjectAlternativeNameExtension) {
      for (const n of ext.names.items) {
        if (n.type === 'dns' || n.type === 'ip') sans.push(n.value.toLowerCase());
        else throw new InvalidError(`the CSR asks for a ${n.type} name; only DNS names and IP addresses are issued`);
      }
    }
  }
  return { ...(cn ? { commonName: cn.toLowerCase() } : {}), sans, csr };
}

export interface LeafOptions {
  commonName: string;
  /** DNS names and IP addresses, already checked by the caller. */
  sans: string[];
  lifetimeMs: number;
}

export interface IssuedLeaf {
  certPem: string;
  serial: string;
  notBefore: string;
  notAfter: string;
}

/** Signs the CSR's key with the CA; name, SANs, usage (serverAuth + clientAuth) and lifetime are the CA's choice. */
export async function signLeaf(ca: ServiceCaKeys, req: CsrRequest, opts: LeafOptions): Promise<IssuedLeaf> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const notBefore = new Date(Date.now() - BACKDATE_MS);
  const notAfter = new Date(Date.now() + opts.lifetimeMs);
  const serial = newSerial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: [{ CN: [opts.commonName] }],
    issuer: caCert.subjectName,
    notBefore,
    notAfter,
    publicKey: req.csr.publicKey,
    signingKey: await signingKey(ca),
    signingAlgorithm: ALGS[ca.keyType].sign,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
      new x509.SubjectAlternativeNameExtension(opts.sans.map((s) => ({ type: isIP(s) ? 'ip' : 'dns', value: s }) as const)),
    ],
  });
  return { certPem: pemOf(cert, 'CERTIFICATE'), serial, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() };
}

/** A CRL of the CA listing `revoked` (serials in hex), valid until `nextUpdate`. */
export async function makeCrl(ca: ServiceCaKeys, revoked: { serial: string; revokedAt: string }[], nextUpdate: Date): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subjectName,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate,
    signingKey: await signingKey(ca),
    signingAlgorithm: ALGS[ca.keyType].sign,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey)],
    entries: revoked.map((r) => ({ serialNumber: r.serial, revocationDate: new Date(r.revokedAt) })),
  });
  return pemOf(crl, 'X509 CRL');
}

/** SHA-256 fingerprint (hex) of a certificate. */
export function certFingerprint(certPem: string): string {
  return new NodeX509(certPem).fingerprint256.replace(/:/g, '').toLowerCase();
}
