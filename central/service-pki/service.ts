import { randomUUID } from 'node:crypto';
import type { IssuedCert, MachineCsrEvent, ServiceCa, ServiceCaCreate } from '../../shared/api/pki.js';
import type { Machine } from '../../shared/api/resources.js';
import { ConflictError, DomainError, ForbiddenError, InvalidError, NotFoundError } from '../../shared/errors/domain-errors.js';
import type { Logger } from '../../shared/log/logger.js';
import type { PkiRequestState } from '../../shared/protocol/desired-state.js';
import { parseDuration } from '../../shared/util/duration.js';
import { MACHINES } from '../machines/resources.js';
import type { Store, WriteOp } from '../store/types.js';
import type { KeySeal } from './key-seal.js';
import { GroupIndex } from './group-index.js';
import { knownNames, unknownNames } from './names.js';
import { CERT_REQUESTS, ISSUED_CERTS, publicCa, SERVICE_CAS, type CertRequestDoc, type IssuedCertDoc, type ServiceCaDoc } from './resources.js';
import { certFingerprint, createServiceCa, makeCrl, readCsr, signLeaf, type ServiceCaKeys } from './x509.js';

/** Who may be a member: the service registry's view (central/services), handed over by the feature. */
export interface Membership {
  isMember(service: string, machineName: string): boolean;
}

export interface ServicePkiOptions {
  logger: Logger;
  /** How long a CRL is valid; it is re-signed when half of that has passed (default 7 days). */
  crlLifetimeMs?: number;
  /** Shortest certificate lifetime a CSR may ask for (default 60 s). */
  minCertTtlMs?: number;
  /** Most unexpired valid certificates one machine may hold from one CA (default 4: renewals overlap). */
  maxValidPerMachine?: number;
  /** How long a certificate stays on record after it expired, then it is deleted (default 30 days). */
  expiredRetentionMs?: number;
}

/**
 * Per-service CAs and the certificates they issue to machines. A CSR comes from a machine's runner
 * through its agent (event `machine-csr`); the central issues it only to a member of the CA's service,
 * only for names it knows for that machine, for at most the CA's maximum lifetime. Every answer (issued
 * or refused, with why) is recorded as the machine's latest request for that CA and reaches the agent in
 * its site's desired state, with every CA's certificate and CRL.
 */
export class ServicePki {
  private readonly crlLifetimeMs: number;
  /** Issued certificates and CSR answers per CA and machine: the per-machine checks never scan the fleet. */
  private readonly certsOf: GroupIndex<IssuedCertDoc>;
  private readonly requestsOf: GroupIndex<CertRequestDoc>;
  /** CSRs being answered, per CA and machine: a machine's CSRs are answered one at a time. */
  private readonly answering = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: Store,
    private readonly seal: KeySeal,
    private readonly members: Membership,
    private readonly o: ServicePkiOptions,
  ) {
    this.crlLifetimeMs = o.crlLifetimeMs ?? 7 * 86_400_000;
    this.certsOf = new GroupIndex<IssuedCertDoc>(store, ISSUED_CERTS, (c) => holderKey(c.ca, c.machine));
    this.requestsOf = new GroupIndex<CertRequestDoc>(store, CERT_REQUESTS, (r) => holderKey(r.ca, r.machine));
  }

  /** Stops following the store (the indexes). */
  close(): void {
    this.certsOf.close();
    this.requestsOf.close();
  }

  // ---- CAs

  async createCa(input: ServiceCaCreate): Promise<ServiceCa> {
    if (this.store.findUnique(SERVICE_CAS, 'name', input.name)) throw new ConflictError(`CA "${input.name}" exists`);
    const lifetime = this.duration(input.ttl, 'ttl');
    const maxCert = this.duration(input.maxCertTtl, 'maxCertTtl');
    if (maxCert >= lifetime) throw new InvalidError('maxCertTtl must be shorter than the CA lifetime', [{ path: 'maxCertTtl', message: 'longer than the CA' }]);
    const keys = await createServiceCa(`Underlay service CA ${input.name}`, input.keyType, lifetime);
    const now = new Date().toISOString();
    const id = randomUUID();
    const crlNext = new Date(Date.now() + this.crlLifetimeMs);
    const doc: ServiceCaDoc = {
      id,
      name: input.name,
      keyType: input.keyType,
      service: input.service ?? input.name,
      ...(input.domain ? { domain: input.domain } : {}),
      certificate: keys.certPem,
      fingerprint: certFingerprint(keys.certPem),
      notAfter: new Date(Date.now() + lifetime).toISOString(),
      maxCertTtl: input.maxCertTtl,
      crl: await makeCrl(keys, [], crlNext),
      crlNextUpdate: crlNext.toISOString(),
      sealedKey: this.seal.seal(keys.keyPem, id),
      createdAt: now,
      updatedAt: now,
    };
    await this.store.put(SERVICE_CAS, doc);
    this.o.logger.info({ ca: doc.name, keyType: doc.keyType, fingerprint: doc.fingerprint }, 'created a service CA');
    return publicCa(doc);
  }

  listCas(): ServiceCa[] {
    return this.store.list<ServiceCaDoc>(SERVICE_CAS, { limit: 10_000 }).items.map(publicCa);
  }

  getCa(name: string): ServiceCa {
    return publicCa(this.caDoc(name));
  }

  /** Deletes the CA, its certificates and its requests (its members stop trusting nothing: they keep the old anchor until told). */
  async deleteCa(name: string): Promise<void> {
    const ca = this.caDoc(name);
    const ops: WriteOp[] = [{ type: 'delete', collection: SERVICE_CAS, id: ca.id }];
    for (const c of this.store.list<IssuedCertDoc>(ISSUED_CERTS, { where: { ca: name }, limit: 1_000_000 }).items) ops.push({ type: 'delete', collection: ISSUED_CERTS, id: c.id });
    for (const r of this.store.list<CertRequestDoc>(CERT_REQUESTS, { where: { ca: name }, limit: 1_000_000 }).items) ops.push({ type: 'delete', collection: CERT_REQUESTS, id: r.id });
    await this.store.commit(ops);
    this.o.logger.info({ ca: name }, 'deleted a service CA');
  }

  // ---- certificates

  listCerts(filter: { ca?: string; machine?: string; site?: string } = {}): IssuedCert[] {
    const where: Record<string, string> = {};
    if (filter.ca) where.ca = filter.ca;
    if (filter.machine) where.machine = filter.machine;
    if (filter.site) where.site = filter.site;
    return this.store.list<IssuedCertDoc>(ISSUED_CERTS, { where, limit: 1_000_000, sort: 'createdAt' }).items;
  }

  getCert(serial: string): IssuedCert {
    const c = this.store.findUnique<IssuedCertDoc>(ISSUED_CERTS, 'serial', serial.toLowerCase());
    if (!c) throw new NotFoundError(`no certificate with serial ${serial}`);
    return c;
  }

  /** Revokes a certificate and re-signs its CA's CRL in the same write. Revoking twice is a no-op. */
  async revoke(serial: string): Promise<IssuedCert> {
    const cert = this.getCert(serial);
    if (cert.status === 'revoked') return cert;
    const now = new Date().toISOString();
    const revoked: IssuedCertDoc = { ...cert, status: 'revoked', revokedAt: now, updatedAt: now };
    const ca = this.caDoc(cert.ca);
    const caNext = await this.withFreshCrl(ca, [revoked]);
    await this.store.commit([
      { type: 'put', collection: ISSUED_CERTS, doc: revoked },
      { type: 'put', collection: SERVICE_CAS, doc: caNext },
    ]);
    this.o.logger.info({ ca: ca.name, serial, machine: cert.machineName }, 'revoked a certificate');
    return revoked;
  }

  /** Re-signs every CRL that has less than half of its lifetime left (a timer calls this). */
  async refreshCrls(now = Date.now()): Promise<number> {
    let n = 0;
    for (const ca of this.store.list<ServiceCaDoc>(SERVICE_CAS, { limit: 10_000 }).items) {
      if (ca.crlNextUpdate && Date.parse(ca.crlNextUpdate) - now > this.crlLifetimeMs / 2) continue;
      await this.store.put(SERVICE_CAS, await this.withFreshCrl(ca));
      n++;
    }
    return n;
  }

  /**
   * Deletes the records of certificates that expired more than `expiredRetentionMs` ago (a timer calls
   * this with refreshCrls): renewals add a certificate per machine every few days, and an expired one is
   * already out of every CRL. In commits of at most `batchSize` deletes. Returns how many went.
   */
  async pruneExpired(now = Date.now(), batchSize = 1000): Promise<number> {
    const cutoff = now - (this.o.expiredRetentionMs ?? 30 * 86_400_000);
    const gone = this.store
      .list<IssuedCertDoc>(ISSUED_CERTS, { limit: 10_000_000 })
      .items.filter((c) => Date.parse(c.notAfter) < cutoff)
      .map((c): WriteOp => ({ type: 'delete', collection: ISSUED_CERTS, id: c.id }));
    for (let i = 0; i < gone.length; i += batchSize) await this.store.commit(gone.slice(i, i + batchSize));
    if (gone.length) this.o.logger.info({ count: gone.length }, 'deleted the records of long-expired certificates');
    return gone.length;
  }

  // ---- machine CSRs

  /**
   * Answers a machine's CSR that its agent (at `site`) forwarded. Idempotent per request id (the agent's
   * outbox may deliver twice). A refusal is recorded with its reason, never thrown: the runner reads it.
   * One machine's CSRs for one CA are answered one after the other, so racing CSRs (or a redelivery racing
   * the first delivery) cannot get past the per-machine cap or be issued twice.
   */
  answerCsr(ev: MachineCsrEvent, site: string): Promise<CertRequestDoc> {
    const key = holderKey(ev.ca, ev.machine);
    const prev = this.answering.get(key) ?? Promise.resolve();
    const next = prev.then(
      () => this.answerNow(ev, site),
      () => this.answerNow(ev, site),
    );
    this.answering.set(key, next);
    const done = () => {
      if (this.answering.get(key) === next) this.answering.delete(key);
    };
    next.then(done, done);
    return next;
  }

  private async answerNow(ev: MachineCsrEvent, site: string): Promise<CertRequestDoc> {
    const existing = this.store.get<CertRequestDoc>(CERT_REQUESTS, ev.request);
    if (existing) return existing;
    const machine = this.store.get<Machine>(MACHINES, ev.machine);
    if (!machine || machine.site !== site) {
      // Not this agent's machine: nothing recorded for it (an agent cannot speak for another site's machine).
      throw new ForbiddenError(`machine ${ev.machine} is not a machine of site ${site}`);
    }
    const at = new Date().toISOString();
    const base = { id: ev.request, machine: machine.id, site, ca: ev.ca, at };
    let answer: CertRequestDoc;
    const ops: WriteOp[] = [];
    try {
      const cert = await this.issue(ev, machine);
      ops.push({ type: 'put', collection: ISSUED_CERTS, doc: cert });
      answer = { ...base, state: 'issued', serial: cert.serial };
      this.o.logger.info({ ca: ev.ca, machine: machine.name, serial: cert.serial, sans: cert.sans, notAfter: cert.notAfter }, 'issued a machine certificate');
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      answer = { ...base, state: 'refused', reason: e.message };
      this.o.logger.warn({ ca: ev.ca, machine: machine.name, reason: e.message }, 'refused a machine CSR');
    }
    // Only the latest request per machine and CA is kept (bounded, and it is what the agent serves).
    for (const old of this.requestsOf.of(holderKey(ev.ca, machine.id))) ops.push({ type: 'delete', collection: CERT_REQUESTS, id: old.id });
    ops.push({ type: 'put', collection: CERT_REQUESTS, doc: answer });
    await this.store.commit(ops);
    return answer;
  }

  private async issue(ev: MachineCsrEvent, machine: Machine): Promise<IssuedCertDoc> {
    const ca = this.store.findUnique<ServiceCaDoc>(SERVICE_CAS, 'name', ev.ca);
    if (!ca) throw new NotFoundError(`no CA "${ev.ca}"`);
    if (!this.members.isMember(ca.service, machine.name)) throw new ForbiddenError(`machine ${machine.name} is not a member of service "${ca.service}"`);
    const req = await readCsr(ev.csr);
    const known = knownNames(machine, ca.domain);
    const unknown = unknownNames(req.sans, known);
    if (unknown.length > 0) throw new ForbiddenError(`the CSR names what machine ${machine.name} is not known as: ${unknown.slice(0, 8).join(', ')} (known: ${known.join(', ')})`);
    const max = parseDuration(ca.maxCertTtl);
    const ttl = ev.ttl ? this.duration(ev.ttl, 'ttl') : max;
    if (ttl < (this.o.minCertTtlMs ?? 60_000)) throw new InvalidError(`ttl ${ev.ttl} is shorter than the minimum`);
    const now = Date.now();
    let valid = 0;
    for (const c of this.certsOf.of(holderKey(ca.name, machine.id))) if (c.status === 'valid' && Date.parse(c.notAfter) > now) valid++;
    if (valid >= (this.o.maxValidPerMachine ?? 4)) throw new ConflictError(`machine ${machine.name} already holds ${valid} valid certificates of CA "${ca.name}"; revoke one or let one expire`);
    const sans = req.sans.length > 0 ? req.sans : known;
    const leaf = await signLeaf(this.keysOf(ca), req, { commonName: machine.name, sans, lifetimeMs: Math.min(ttl, max) });
    const at = new Date().toISOString();
    return {
      id: leaf.serial,
      serial: leaf.serial,
      ca: ca.name,
      machine: machine.id,
      machineName: machine.name,
      site: machine.site,
      commonName: machine.name,
      sans,
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      certificate: leaf.certPem,
      status: 'valid',
      createdAt: at,
      updatedAt: at,
    };
  }

  /** What a site's agent needs: every CA's certificate and CRL, and the answers to its machines' CSRs. */
  siteState(site: string): { cas: { name: string; service: string; certificate: string; crl?: string }[]; requests: PkiRequestState[] } {
    const cas = this.store.list<ServiceCaDoc>(SERVICE_CAS, { limit: 10_000 }).items.map((c) => ({ name: c.name, service: c.service, certificate: c.certificate, ...(c.crl ? { crl: c.crl } : {}) }));
    const requests = this.store.list<CertRequestDoc>(CERT_REQUESTS, { where: { site }, limit: 1_000_000, sort: 'id' }).items.map((r): PkiRequestState => {
      const cert = r.serial ? this.store.findUnique<IssuedCertDoc>(ISSUED_CERTS, 'serial', r.serial) : undefined;
      return {
        request: r.id,
        machine: r.machine,
        ca: r.ca,
        state: r.state,
        ...(r.reason ? { reason: r.reason } : {}),
        ...(cert ? { certificate: cert.certificate, serial: cert.serial, notBefore: cert.notBefore, notAfter: cert.notAfter } : {}),
      };
    });
    return { cas, requests };
  }

  // ---- helpers

  private caDoc(name: string): ServiceCaDoc {
    const ca = this.store.findUnique<ServiceCaDoc>(SERVICE_CAS, 'name', name);
    if (!ca) throw new NotFoundError(`no CA "${name}"`);
    return ca;
  }

  private keysOf(ca: ServiceCaDoc): ServiceCaKeys {
    return { keyType: ca.keyType, certPem: ca.certificate, keyPem: this.seal.open(ca.sealedKey, ca.id) };
  }

  /** The CA with a CRL re-signed over its revoked certificates (`extra`: revocations not yet stored). */
  private async withFreshCrl(ca: ServiceCaDoc, extra: IssuedCertDoc[] = []): Promise<ServiceCaDoc> {
    const now = Date.now();
    const bySerial = new Map(this.listCerts({ ca: ca.name }).map((c) => [c.serial, c]));
    for (const e of extra) bySerial.set(e.serial, e);
    // Expired certificates may leave the CRL (RFC 5280 5.1.2.6 allows it); the list stays bounded.
    const revoked = [...bySerial.values()].filter((c) => c.status === 'revoked' && Date.parse(c.notAfter) > now).map((c) => ({ serial: c.serial, revokedAt: c.revokedAt! }));
    const next = new Date(now + this.crlLifetimeMs);
    return { ...ca, crl: await makeCrl(this.keysOf(ca), revoked, next), crlNextUpdate: next.toISOString(), updatedAt: new Date(now).toISOString() };
  }

  private duration(text: string, path: string): number {
    try {
      return parseDuration(text);
    } catch (e) {
      throw new InvalidError((e as Error).message, [{ path, message: 'not a duration' }]);
    }
  }
}

/** The group of a machine's certificates (and CSR answers) of one CA. */
function holderKey(ca: string, machine: string): string {
  return `${ca}\0${machine}`;
}
