/**
 * Runs the agent's DHCP server as a child process (inside a test's network namespace). Config: a JSON file
 * (argv[2]). Prints one JSON object per line on stdout: `ready` (with the loaded leases), every lease event,
 * and `leases` on SIGUSR1. Logs (pino, debug) go to stderr.
 */
import { readFileSync } from 'node:fs';
import { createLogger } from '../../shared/log/logger.js';
import { ReservationSchema, SubnetSchema, type MachineFacts } from '../../shared/dhcp/config.js';
import { DhcpServer } from '../../agent/dhcp/server.js';

const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8'));
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
const subnets = (cfg.subnets ?? []).map((s: unknown) => SubnetSchema.parse(s));
const reservations = (cfg.reservations ?? []).map((r: unknown) => ReservationSchema.parse(r));
const machines: Record<string, MachineFacts> = cfg.machines ?? {};
const server = new DhcpServer({
  mode: cfg.mode,
  ...(cfg.interface ? { interface: cfg.interface } : {}),
  serverAddress: cfg.serverAddress,
  subnets: () => subnets,
  reservations: () => reservations,
  lookupMachine: (mac) => machines[mac] ?? { known: false, netboot: true },
  bootUrls: { ipxeScript: `http://${cfg.serverAddress}:8080/boot.ipxe`, httpBoot: `http://${cfg.serverAddress}:8080/ipxe/ipxe.efi` },
  ...(cfg.leaseFile ? { leaseFile: cfg.leaseFile } : {}),
  ...(cfg.io ? { io: cfg.io } : {}),
  logger: createLogger('dhcp', 'debug'),
  onLeaseEvent: (e) => out({ event: 'lease-event', ...e }),
});
await server.start();
out({ event: 'ready', pid: process.pid, io: server.io(), leases: server.leases() });
process.on('SIGUSR1', () => out({ event: 'leases', leases: server.leases(), stats: server.stats() }));
process.on('SIGTERM', () => {
  void server.stop().then(() => process.exit(0));
});
