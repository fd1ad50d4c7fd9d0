import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import sodium from 'libsodium-wrappers';
import { ReservationSchema, SubnetSchema, type Subnet, type Reservation } from '../../shared/dhcp/config.js';
import { BootRenderer } from '../../shared/render/bootfiles.js';
import { DhcpServer } from '../dhcp/server.js';
import { TftpServer } from '../tftp/index.js';
import { createBootApp } from '../http/app.js';
import { ArtifactSync } from '../artifacts/sync.js';
import { BootSessions } from '../http/boot-sessions.js';
import { OsCredentials } from '../http/os-credentials.js';
import { MachineIds, machineIdSecretFrom } from '../http/machine-id.js';
import { listenBootHttp, type HttpServerLimits } from '../http/server.js';
import type { AgentRuntime } from '../run.js';
import { bootUrls } from './urls.js';
import { secretOpener } from '../state/open-secret.js';

export interface BootListenerOptions {
  /** The agent's address on the provisioning network (DHCP server id, TFTP next-server, HTTP URLs). */
  address: string;
  /** The provisioning interface (documented constraint: see docs/decisions.md on interface binding). */
  interface?: string;
  dhcp: 'full' | 'proxy' | 'off';
  httpPort: number;
  tftpPort: number;
  dhcpPort: number;
  proxyPort: number;
  dhcpClientPort: number;
  /** Boot artifacts served at /files/ (default: <state>/boot). */
  bootDir?: string;
  /** Send machines to unpinned upstream kernel/initrd URLs this agent does not hold (default: refused). */
  allowUnpinned?: boolean;
  /** Where the iPXE binaries are (Debian's ipxe package: /usr/lib/ipxe). */
  ipxeDir: string;
  /** Lifetime of an unclaimed boot token, ms (default 15 min). */
  bootTokenTtlMs?: number;
  /** Connection limits and timeouts of the HTTP boot server. */
  httpLimits?: HttpServerLimits;
  /** Boot-file downloads (`/files/*`) one client address may run at once (default a quarter of the 256 slots). */
  fileDownloadsPerAddress?: number;
  /** Counts each finished HTTP boot request (the agent's metrics). */
  onHttpRequest?: (route: string, status: number) => void;
}

export interface BootListeners {
  httpUrl: string;
  sessions: BootSessions;
  dhcp?: DhcpServer;
  tftp?: TftpServer;
  http: Server;
  artifacts: ArtifactSync;
  /** The site's DHCP subnets from the cached desired state. */
  subnets: () => Subnet[];
  stop(): Promise<void>;
}

const IPXE_FILES = ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'];
const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Starts the site's boot listeners from the cached desired state: DHCP (full/proxy/off), TFTP (iPXE
 * binaries only) and HTTP boot. Each serves from the agent's local copy, so booting continues while
 * the central is unreachable. Without root, privileged ports are skipped with a clear message.
 */
export async function startBootListeners(rt: AgentRuntime, o: BootListenerOptions): Promise<BootListeners> {
  const log = rt.logger;
  const bootDir = o.bootDir ?? rt.paths.bootFiles;
  mkdirSync(bootDir, { recursive: true });
  const tftpRoot = join(rt.paths.dir, 'tftp');
  stageIpxeBinaries(o.ipxeDir, tftpRoot, log);

  await sodium.ready;
  let dhcp: DhcpServer | undefined;
  const sessions = new BootSessions(rt.paths.bootSessions, { ...(o.bootTokenTtlMs ? { tokenTtlMs: o.bootTokenTtlMs } : {}) });
  await sessions.open();
  const osCredentials = new OsCredentials(rt.paths.osCredentials);
  await osCredentials.open();
  const urls = bootUrls(`http://${o.address}:${o.httpPort}`);
  const httpUrl = urls.base;
  const openSecret = secretOpener(rt.sealKey);
  let renderer: { version: string | null; r: BootRenderer } = { version: null, r: new BootRenderer({ logger: log }) };
  const currentRenderer = () => {
    const v = rt.desiredState.version;
    if (renderer.version !== v) renderer = { version: v, r: new BootRenderer({ logger: log, snippets: rt.desiredState.current?.templates ?? {} }) };
    return renderer.r;
  };
  const artifacts = new ArtifactSync({ centralUrl: rt.centralUrl, tls: rt.tls, dir: join(bootDir, 'sha256'), logger: log });
  artifacts.update(rt.desiredState.current);
  const offState = rt.desiredState.onChange((s) => artifacts.update(s));
  const app = createBootApp({
    rt,
    sessions,
    osCredentials,
    machineIds: new MachineIds(machineIdSecretFrom(rt.sealKey.privateKey)),
    agentId: rt.identity.agentId,
    agent: { httpUrl, tftpAddress: o.address, pubkey: rt.identity.signingPublicKey },
    bootDir,
    ipxeDir: o.ipxeDir,
    renderer: currentRenderer,
    openSecret,
    localArtifact: (url) => artifacts.localPath(url),
    ...(o.allowUnpinned ? { allowUnpinned: true } : {}),
    ...(o.fileDownloadsPerAddress ? { maxFileDownloadsPerAddress: o.fileDownloadsPerAddress } : {}),
    ...(o.onHttpRequest ? { onRequest: o.onHttpRequest } : {}),
    leasedAddresses: (mac) => {
      const now = Date.now();
      return (dhcp?.leases() ?? []).filter((l) => l.mac === mac && l.state === 'bound' && l.expiresAt > now).map((l) => l.address);
    },
  });
  const http = await listenBootHttp(app, { hostname: o.address, port: o.httpPort, logger: log, ...o.httpLimits });
  log.info({ url: httpUrl }, 'HTTP boot listening');

  const current = siteDhcpConfig(rt);
  let tftp: TftpServer | undefined;
  if (o.tftpPort < 1024 && !isRoot()) log.error({ port: o.tftpPort }, 'TFTP needs root for a port below 1024: not serving TFTP (UEFI/BIOS PXE cannot chain-load iPXE)');
  else {
    tftp = new TftpServer({
      root: tftpRoot,
      address: o.address,
      port: o.tftpPort,
      logger: log,
      onTransfer: (e) => log[e.outcome === 'error' ? 'warn' : 'info']({ ...e }, 'tftp transfer'),
    });
    await tftp.start();
    log.info({ address: o.address, port: o.tftpPort }, 'TFTP listening');
  }

  if (o.dhcp !== 'off') {
    if (o.dhcpPort < 1024 && !isRoot()) log.error({ port: o.dhcpPort }, 'DHCP needs root for port 67: not serving DHCP');
    else {
      dhcp = new DhcpServer({
        mode: o.dhcp,
        ...(o.interface ? { interface: o.interface } : {}),
        serverAddress: o.address,
        port: o.dhcpPort,
        proxyPort: o.proxyPort,
        clientPort: o.dhcpClientPort,
        subnets: () => current().subnets,
        reservations: () => current().reservations,
        lookupMachine: (mac) => {
          const m = rt.desiredState.machineByMac(mac);
          return m ? { known: true, netboot: m.netboot } : { known: false, netboot: true };
        },
        bootUrls: { ipxeScript: urls.entryScript, httpBoot: urls.ipxeBinary('ipxe.efi') },
        leaseFile: rt.paths.leases,
        logger: log,
        onLeaseEvent: (e) => void rt.emitEvent('lease', e).catch((err: Error) => log.error({ err: err.message }, 'could not queue a lease event')),
      });
      await dhcp.start();
      log.info({ mode: o.dhcp, address: o.address }, 'DHCP serving');
    }
  }

  return {
    httpUrl,
    sessions,
    dhcp,
    tftp,
    http,
    artifacts,
    subnets: () => current().subnets,
    async stop() {
      offState();
      artifacts.stop();
      await dhcp?.stop();
      await tftp?.stop();
      await new Promise<void>((r) => {
        http.close(() => r());
        (http as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await sessions.close();
      await osCredentials.close();
    },
  };
}

/** Copies the iPXE binaries TFTP hands out into the TFTP root (only the changed ones); warns about missing ones. */
function stageIpxeBinaries(ipxeDir: string, tftpRoot: string, log: AgentRuntime['logger']): void {
  mkdirSync(tftpRoot, { recursive: true });
  const missing: string[] = [];
  for (const f of IPXE_FILES) {
    const src = join(ipxeDir, f);
    if (!existsSync(src)) {
      missing.push(f);
      continue;
    }
    const dst = join(tftpRoot, f);
    if (!existsSync(dst) || statSync(dst).size !== statSync(src).size) copyFileSync(src, dst);
  }
  if (missing.length) log.warn({ ipxeDir, missing }, 'iPXE binaries missing: install Debian\'s "ipxe" package or pass --ipxe-dir');
}

/** The site's subnets and reservations from the cached desired state, parsed once per state version (invalid entries skipped). */
function siteDhcpConfig(rt: AgentRuntime): () => { subnets: Subnet[]; reservations: Reservation[] } {
  const parseAll = <T>(items: unknown[], schema: { safeParse: (v: unknown) => { success: boolean; data?: T } }): T[] =>
    items.map((i) => schema.safeParse(i)).filter((r) => r.success).map((r) => r.data as T);
  let cache: { version: string | null; subnets: Subnet[]; reservations: Reservation[] } = { version: null, subnets: [], reservations: [] };
  return () => {
    if (cache.version !== rt.desiredState.version) {
      const s = rt.desiredState.current;
      cache = { version: rt.desiredState.version, subnets: parseAll<Subnet>(s?.subnets ?? [], SubnetSchema), reservations: parseAll<Reservation>(s?.reservations ?? [], ReservationSchema) };
    }
    return cache;
  };
}
