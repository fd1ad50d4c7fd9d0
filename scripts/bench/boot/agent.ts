/**
 * The agent's boot services for the bench, in their own process inside the server namespace:
 * DhcpServer (full mode, lease journal on disk), TftpServer and the HTTP boot app (`/files/` = bootDir),
 * wired as agent/boot/listeners.ts wires them (same classes, same defaults, production pino logger at info
 * to stderr, which the bench sends to a file), minus the central link (an empty desired state: every MAC
 * is an unknown machine that may netboot).
 *
 *   ip netns exec NS node dist/scripts/bench/boot/agent.js JSON
 *
 * Prints `READY` once every listener is bound and `STATS {...}` on SIGTERM, then exits. On SIGUSR2 it prints
 * `LOOP {...}`: the event loop's delay (perf_hooks.monitorEventLoopDelay, 10 ms resolution) since the
 * previous SIGUSR2 (or the start) as p50/p99/max ms, and resets it (the images bench reads it per run).
 */
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SubnetSchema } from '../../../shared/dhcp/config.js';
import { createLogger } from '../../../shared/log/logger.js';
import { DhcpServer } from '../../../agent/dhcp/server.js';
import { TftpServer } from '../../../agent/tftp/index.js';
import { createBootApp, type BootHttpOptions } from '../../../agent/http/app.js';
import { listenBootHttp } from '../../../agent/http/server.js';
import { BootSessions } from '../../../agent/http/boot-sessions.js';
import { MachineIds } from '../../../agent/http/machine-id.js';
import { mkdtempSync } from 'node:fs';
import { udpDrops } from './udp-drops.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOOT_ROUTES, bootUrls } from '../../../agent/boot/urls.js';

export interface AgentSpec {
  address: string;
  interface: string;
  subnet: { cidr: string; start: string; end: string; gateway: string };
  leaseFile?: string;
  tftpRoot: string;
  tftpPort: number;
  bootDir: string;
  ipxeDir: string;
  httpPort: number;
}

async function main(spec: AgentSpec): Promise<void> {
  const log = createLogger('agent');
  const urls = bootUrls(`http://${spec.address}:${spec.httpPort}`);
  const httpUrl = urls.base;
  const rt = {
    desiredState: { version: null, current: null, machineByMac: () => undefined, override: () => undefined },
    logger: log,
    emitEvent: async () => undefined,
    outbox: { depth: () => undefined },
  } as unknown as BootHttpOptions['rt'];
  const sessions = new BootSessions(join(mkdtempSync(join(tmpdir(), 'ul-bench-sessions-')), 'boot-sessions.jsonl'));
  await sessions.open();
  const unlimited = { mac: { burst: 1e9, perSec: 1e9 }, source: { burst: 1e9, perSec: 1e9 } };
  // Boot-file downloads answered and turned away (503 + Retry-After) by the agent's admission.
  const files = { admitted: 0, refused: 0 };
  const app = createBootApp({
    rt,
    sessions,
    machineIds: new MachineIds(randomBytes(32)),
    // The bench measures throughput: the per-MAC and per-source limits would be what it measures.
    rates: { script: unlimited, claim: unlimited, discovery: unlimited, health: unlimited, config: unlimited },
    agent: { httpUrl, tftpAddress: spec.address, pubkey: '' },
    bootDir: spec.bootDir,
    ipxeDir: spec.ipxeDir,
    // Every bench client comes from the client namespace's one address: no per-address share.
    maxFileDownloadsPerAddress: 1e9,
    onRequest: (route, status) => {
      if (route !== BOOT_ROUTES.files) return;
      if (status === 503) files.refused++;
      else files.admitted++;
    },
  });
  // The production listener (connection limits and timeouts), as agent/boot/listeners.ts starts it.
  const http = await listenBootHttp(app, { hostname: spec.address, port: spec.httpPort, logger: log });
  const tftp = new TftpServer({
    root: spec.tftpRoot,
    address: spec.address,
    port: spec.tftpPort,
    logger: log,
    onTransfer: (e) => log[e.outcome === 'error' ? 'warn' : 'info']({ ...e }, 'tftp transfer'),
  });
  await tftp.start();
  let dhcp: DhcpServer | undefined;
  if (spec.leaseFile) {
    const subnets = [SubnetSchema.parse({ cidr: spec.subnet.cidr, range: { start: spec.subnet.start, end: spec.subnet.end }, gateway: spec.subnet.gateway, dns: [spec.address], leaseTimeSec: 3600 })];
    dhcp = new DhcpServer({
      mode: 'full',
      interface: spec.interface,
      serverAddress: spec.address,
      subnets: () => subnets,
      reservations: () => [],
      lookupMachine: () => ({ known: false, netboot: true }),
      bootUrls: { ipxeScript: urls.entryScript, httpBoot: urls.ipxeBinary('ipxe.efi') },
      leaseFile: spec.leaseFile,
      logger: log,
      onLeaseEvent: () => undefined,
    });
    await dhcp.start();
  }
  // Bench-only: how long a timer (and so a DHCP datagram) waited for the event loop.
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  process.on('SIGUSR2', () => {
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    process.stdout.write(`LOOP ${JSON.stringify({ p50ms: ms(loop.percentile(50)), p99ms: ms(loop.percentile(99)), maxMs: ms(loop.max), samples: loop.count })}\n`);
    loop.reset();
  });
  process.stdout.write('READY\n');
  const stop = async () => {
    // Printed before stopping: a stop that outlasts the bench's grace period (SIGKILL) still leaves the counters.
    const stats = { dhcp: dhcp?.stats(), tftp: tftp.stats(), files, udpDrops: udpDrops() };
    await new Promise<void>((r) => process.stdout.write(`STATS ${JSON.stringify(stats)}\n`, () => r()));
    await dhcp?.stop();
    await tftp.stop();
    http.close();
    (http as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

main(JSON.parse(process.argv[2] ?? '{}') as AgentSpec).catch((e: Error) => {
  process.stderr.write(`agent failed: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
