import type { IssuedCert, ServiceCa } from '../../shared/api/pki.js';
import type { CollectionSpec, Doc } from '../store/types.js';
import type { SealedKey } from './key-seal.js';

/** Service CAs; the document carries the sealed private key (never served). */
export const SERVICE_CAS = 'service-cas';
/** Certificates the service CAs issued (id = serial). */
export const ISSUED_CERTS = 'issued-certs';
/** The central's answer to each machine's latest CSR per CA (what the agent hands the runner). */
export const CERT_REQUESTS = 'cert-requests';

export type ServiceCaDoc = ServiceCa & { sealedKey: SealedKey };
export type IssuedCertDoc = IssuedCert;
export interface CertRequestDoc extends Doc {
  id: string;
  machine: string;
  site: string;
  ca: string;
  state: 'issued' | 'refused';
  serial?: string;
  reason?: string;
  at: string;
}

export const serviceCasCollection: CollectionSpec = { name: SERVICE_CAS, unique: [{ field: 'name', values: (d: Doc) => [String(d.name)] }] };
export const issuedCertsCollection: CollectionSpec = { name: ISSUED_CERTS, unique: [{ field: 'serial', values: (d: Doc) => [String(d.serial)] }] };
export const certRequestsCollection: CollectionSpec = { name: CERT_REQUESTS, unique: [] };

/** The public view of a CA (without its sealed key). */
export function publicCa(d: ServiceCaDoc): ServiceCa {
  const { sealedKey: _k, ...rest } = d;
  return rest;
}
