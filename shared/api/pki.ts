import { z } from 'zod';
import { Duration } from './duration.js';

/** Key types a service CA can have (EC P-256 is the default: small, fast, understood everywhere). */
export const CaKeyType = z.enum(['ec-p256', 'rsa-3072', 'ed25519']);
const Name = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'lower-case letters, digits and "-", at most 63');
const Domain = z.string().regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/).max(200);

/** A service CA ("trust me"): its certificate and CRL are public; its private key never leaves the central. */
export const ServiceCa = z
  .object({
    id: z.string(),
    name: Name,
    keyType: CaKeyType,
    /** The service whose members it certifies (default: the CA's name). */
    service: Name,
    /** Members' FQDNs are `<machine>.<domain>`. */
    domain: Domain.optional(),
    certificate: z.string().describe('the CA certificate (PEM): the trust anchor members install'),
    fingerprint: z.string().describe('SHA-256 of the CA certificate (hex)'),
    notAfter: z.string(),
    maxCertTtl: Duration.describe('the longest lifetime of a member certificate'),
    crl: z.string().optional().describe('the current CRL (PEM)'),
    crlNextUpdate: z.string().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'ServiceCa' });
export type ServiceCa = z.infer<typeof ServiceCa>;

export const ServiceCaCreate = z
  .object({
    name: Name,
    keyType: CaKeyType.default('ec-p256'),
    ttl: Duration.default('3650d').describe("the CA certificate's lifetime"),
    service: Name.optional(),
    domain: Domain.optional(),
    maxCertTtl: Duration.default('30d'),
  })
  .strict()
  .meta({ id: 'ServiceCaCreate' });
export type ServiceCaCreate = z.infer<typeof ServiceCaCreate>;

/** A certificate a service CA issued to a machine. */
export const IssuedCert = z
  .object({
    id: z.string(),
    serial: z.string().describe('hex'),
    ca: Name,
    machine: z.string().describe('machine id'),
    machineName: z.string(),
    site: z.string(),
    commonName: z.string(),
    sans: z.array(z.string()),
    notBefore: z.string(),
    notAfter: z.string(),
    certificate: z.string(),
    status: z.enum(['valid', 'revoked']),
    revokedAt: z.string().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'IssuedCert' });
export type IssuedCert = z.infer<typeof IssuedCert>;

/** The agent event a machine's CSR becomes (the agent adds the machine id of the session that sent it). */
export const MACHINE_CSR_EVENT = 'machine-csr';
export const MachineCsrEvent = z
  .object({
    request: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
    machine: z.string().min(1).max(64),
    ca: Name,
    csr: z.string().min(100).max(16_384),
    ttl: Duration.optional(),
  })
  .strict();
export type MachineCsrEvent = z.infer<typeof MachineCsrEvent>;

/** What the runner posts to its agent: a CA name, a PEM CSR made on the machine, and a lifetime (≤ the CA's maximum). */
export const MachineCsrBody = MachineCsrEvent.pick({ ca: true, csr: true, ttl: true }).strict();
