import type { Command } from 'commander';
import type { IssuedCert, ServiceCa } from '../api/pki.js';
import { action, globals } from './context.js';
import { print, printPage } from './output.js';

const enc = encodeURIComponent;
const caRow = (c: ServiceCa) => ({ name: c.name, keyType: c.keyType, service: c.service, domain: c.domain, maxCertTtl: c.maxCertTtl, notAfter: c.notAfter, fingerprint: c.fingerprint.slice(0, 16) });
const certRow = (c: IssuedCert) => ({ serial: c.serial, ca: c.ca, machine: c.machineName, status: c.status, sans: c.sans.join(','), notAfter: c.notAfter });

/** `underlay pki …`: per-service CAs ("trust me") and the certificates they issued to machines (docs/pki.md). */
export function registerPkiCommands(program: Command): void {
  const pki = program.command('pki').description('per-service certificate authorities and machine certificates');
  const ca = pki.command('ca').description('service CAs');

  ca.command('create <name>')
    .description("create a CA for service NAME (its members' runners request certificates with cert-request tasks)")
    .option('--ttl <duration>', "the CA certificate's lifetime (e.g. 10y; a year is 365 days)", '3650d')
    .option('--key <type>', 'ec-p256 | rsa-3072 | ed25519', 'ec-p256')
    .option('--service <name>', 'the service whose members it certifies (default: NAME)')
    .option('--domain <domain>', "members' FQDN is <machine>.<domain>")
    .option('--max-cert-ttl <duration>', 'longest lifetime of a member certificate', '30d')
    .action(
      action(async (name: string, o: { ttl: string; key: string; service?: string; domain?: string; maxCertTtl: string }, c: Command) => {
        const g = globals(c);
        const body = { name, ttl: o.ttl, keyType: o.key, maxCertTtl: o.maxCertTtl, ...(o.service ? { service: o.service } : {}), ...(o.domain ? { domain: o.domain } : {}) };
        const created = await g.client().call<ServiceCa>('POST', '/api/v1/pki/cas', body);
        print(g.format === 'table' ? [caRow(created)] : created, g.format);
      }),
    );
  ca.command('list')
    .description('list service CAs')
    .action(
      action(async (_o: unknown, c: Command) => {
        const g = globals(c);
        const page = await g.client().call<{ items: ServiceCa[] }>('GET', '/api/v1/pki/cas');
        printPage(page, g.format, undefined, caRow);
      }),
    );
  ca.command('show <name>')
    .description('show a CA (with its certificate and current CRL)')
    .action(
      action(async (name: string, _o: unknown, c: Command) => {
        const g = globals(c);
        print(await g.client().call<ServiceCa>('GET', `/api/v1/pki/cas/${enc(name)}`), g.format === 'table' ? 'yaml' : g.format);
      }),
    );
  ca.command('delete <name>')
    .description('delete a CA and every certificate it issued')
    .action(
      action(async (name: string, _o: unknown, c: Command) => {
        await globals(c).client().call('DELETE', `/api/v1/pki/cas/${enc(name)}`);
      }),
    );

  const certs = pki.command('certs').description('certificates issued to machines');
  certs
    .command('list [ca]')
    .description('list issued certificates (of CA `ca` only when given; `--ca` is the global CA-certificate option)')
    .option('--machine <id>', 'only this machine (id)')
    .action(
      action(async (caName: string | undefined, opts: { machine?: string }, c: Command) => {
        const g = globals(c);
        const o = { ca: caName, machine: opts.machine };
        const q = new URLSearchParams({ ...(o.ca ? { ca: o.ca } : {}), ...(o.machine ? { machine: o.machine } : {}) }).toString();
        const page = await g.client().call<{ items: IssuedCert[] }>('GET', `/api/v1/pki/certs${q ? `?${q}` : ''}`);
        printPage(page, g.format, undefined, certRow);
      }),
    );
  certs
    .command('revoke <serial>')
    .description("revoke a certificate: its CA's CRL is re-signed and reaches the agents with the site state")
    .action(
      action(async (serial: string, _o: unknown, c: Command) => {
        const g = globals(c);
        const r = await g.client().call<IssuedCert>('POST', `/api/v1/pki/certs/${enc(serial)}/revoke`);
        print(g.format === 'table' ? [certRow(r)] : r, g.format);
      }),
    );
}
