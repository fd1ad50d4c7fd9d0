/**
 * Every path a machine fetches from its site agent, defined once. The HTTP route modules (agent/http/)
 * register `BOOT_ROUTES`; DHCP hands out `bootUrls(…).entryScript` and the HTTP-boot binary; the render
 * context gives templates `urls.files`, `urls.machineBase` and `urls.done` from `bootUrls`. The shell
 * runner of the discovery image (images/discovery/runner.sh) calls the runner and discovery routes by
 * these same paths.
 */
const ENTRY_SCRIPT = '/boot.ipxe';
const IPXE = '/ipxe/';
const FILES = '/files/';
const MACHINE = '/m/';
const DONE = 'done';

/** Route patterns (hono syntax) of the agent's machine-facing HTTP surface. */
export const BOOT_ROUTES = {
  health: '/healthz',
  /** The iPXE entry script: DHCP's boot file for iPXE clients; it chains to `machineScript`. */
  entryScript: ENTRY_SCRIPT,
  /** The machine's own iPXE script (`?mac=&uuid=&buildarch=&platform=`); mints a boot token. */
  machineScript: `${IPXE}script`,
  /** iPXE binaries over HTTP (UEFI HTTP boot). */
  ipxeBinary: `${IPXE}:binary`,
  /** Boot artifacts under the boot directory (kernels, initrds, images, `sha256/<hash>`). */
  files: `${FILES}*`,
  /** A rendered per-machine file (Ignition, NoCloud, kickstart, preseed …) of the boot that holds `:token`. */
  machineFile: `${MACHINE}:token/*`,
  /** The installer's success report: the machine boots from its disk from now on. */
  installDone: `${MACHINE}:token/${DONE}`,
  claim: '/api/v1/boot/claim',
  discovery: '/api/v1/discovery',
  serviceHealth: '/api/v1/services/:service/members/:member/:check',
  runnerNext: '/api/v1/runner/next',
  runnerEvents: '/api/v1/runner/tasks/:id/events',
  /** A deploy's installed-OS credential, issued once to the boot session running that image-deploy. */
  osCredential: '/api/v1/runner/os-credential',
  /** The installed OS's runner reports its OS, kernel and addresses (the central's `machine-os` event). */
  osReport: '/api/v1/runner/os-report',
  /** The runner's CSR for a service CA (forwarded as a `machine-csr` event), and its answer by request id. */
  runnerCsr: '/api/v1/runner/csr',
  runnerCsrAnswer: '/api/v1/runner/csr/:request',
  /** A service CA's certificate and CRL (public: what a machine checks its peers against). */
  pkiCaCert: '/api/v1/pki/:ca/ca.pem',
  pkiCrl: '/api/v1/pki/:ca/crl.pem',
} as const;

/** The boot-directory path a `/files/…` request names, as sent (still percent-encoded). */
export function filePathOf(requestPath: string): string {
  return requestPath.slice(FILES.length);
}

/** The file a `/m/<token>/…` request names, as sent (still percent-encoded). */
export function machineFilePathOf(requestPath: string, token: string): string {
  return requestPath.slice(`${MACHINE}${token}/`.length);
}

/** The absolute URLs machines are given for the agent whose HTTP boot surface is at `base` (`http://ADDRESS:PORT`). */
export function bootUrls(base: string) {
  const root = base.replace(/\/+$/, '');
  return {
    base: root,
    entryScript: `${root}${ENTRY_SCRIPT}`,
    machineScript: `${root}${BOOT_ROUTES.machineScript}`,
    ipxeBinary: (name: string) => `${root}${IPXE}${name}`,
    /** A boot artifact by its path relative to the boot directory. */
    file: (rel: string) => `${root}${FILES}${rel.replace(/^\/+/, '')}`,
    /** `urls.machineBase` of the render context: every rendered file of this boot is under it. */
    machineBase: (token: string) => `${root}${MACHINE}${token}`,
    installDone: (token: string) => `${root}${MACHINE}${token}/${DONE}`,
  };
}
export type BootUrls = ReturnType<typeof bootUrls>;
