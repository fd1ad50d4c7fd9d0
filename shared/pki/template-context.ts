/**
 * The `pki` object templates see (boot files rendered by the agent, workflow step payloads rendered by
 * the central): where the machine's runner keeps each service CA's files (images/discovery/cert.sh) and
 * the CA certificates themselves. Public material only: the key never leaves the machine.
 */

/** Where cert.sh writes on an installed OS, and in the discovery environment (`$UL_STATE/certs`). */
export const MACHINE_CERT_DIR = { os: '/etc/underlay/certs', discovery: '/run/underlay/certs' } as const;
export type MachineCertMode = keyof typeof MACHINE_CERT_DIR;

/** A CA as templates need it (its service defaults to its name, as the central's does). */
export interface TemplateCa {
  name: string;
  service?: string;
  certificate: string;
}

export interface PkiTemplateContext {
  /** The directory of the per-CA folders (what run-script tasks get as $UNDERLAY_CERT_DIR). */
  dir: string;
  /** Per CA: its folder and files on the machine, its service and its certificate (PEM). */
  cas: Record<string, { service: string; dir: string; key: string; cert: string; ca: string; crl: string; ca_pem: string }>;
  /** Per service: the PEM of every CA of the service, by CA name (the trust bundle while a CA is rotated). */
  bundles: Record<string, string>;
}

export function pkiTemplateContext(cas: readonly TemplateCa[], mode: MachineCertMode): PkiTemplateContext {
  const dir = MACHINE_CERT_DIR[mode];
  const out: PkiTemplateContext = { dir, cas: {}, bundles: {} };
  for (const ca of [...cas].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const pem = ca.certificate.endsWith('\n') ? ca.certificate : `${ca.certificate}\n`;
    const service = ca.service ?? ca.name;
    const d = `${dir}/${ca.name}`;
    out.cas[ca.name] = { service, dir: d, key: `${d}/key.pem`, cert: `${d}/cert.pem`, ca: `${d}/ca.pem`, crl: `${d}/crl.pem`, ca_pem: pem };
    out.bundles[service] = (out.bundles[service] ?? '') + pem;
  }
  return out;
}
