/**
 * CPU per lease of the agent's DHCP path in one process, without sockets: what the boot bench's leases/s
 * depends on once the generator is not the limit, measured in a way that survives a busy machine
 * (process CPU time, not wall time).
 *
 *   node dist/scripts/bench/boot/dhcp-cpu.js [--clients 20000] [--inflight 64] [--dir /var/tmp]
 *
 * N relayed BIOS PXE clients (the datagrams perfdhcp sends: giaddr, options 60 and 93) each do DISCOVER →
 * OFFER → REQUEST → ACK through `DhcpServer.handlePacket` (decode, lease store, reply) and
 * `serializePacket`, `--inflight` exchanges at a time, with the lease journal on disk (every ACK after its
 * fdatasync). Prints CPU ms per 1,000 leases (user + system, all threads of this process), leases/s and the
 * journal's batches.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SubnetSchema } from '../../../shared/dhcp/config.js';
import { encodeIp, MessageType, Opt } from '../../../agent/dhcp/options.js';
import { BOOTREQUEST, emptyPacket, parsePacket, serializePacket } from '../../../agent/dhcp/packet.js';
import { DhcpServer, type Incoming } from '../../../agent/dhcp/server.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const clients = Number(arg('clients', '20000'));
const inflight = Number(arg('inflight', '64'));
const base = arg('dir', '/var/tmp');

const GIADDR = '198.19.0.1';
const relay: Incoming = { from: { address: GIADDR, port: 67 }, localAddress: '198.18.0.1', listener: 'dhcp' };
const vendor = Buffer.from('PXEClient:Arch:00000:UNDI:002001');

function datagram(type: number, i: number, offered?: Buffer): Buffer {
  const mac = `02:42:${[(i >>> 24) & 255, (i >>> 16) & 255, (i >>> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  const p = emptyPacket(BOOTREQUEST, mac, i + 1);
  p.giaddr = GIADDR;
  p.hops = 1;
  p.options.set(Opt.MESSAGE_TYPE, Buffer.from([type]));
  if (offered) {
    p.options.set(Opt.REQUESTED_IP, offered);
    p.options.set(Opt.SERVER_ID, encodeIp('198.18.0.1'));
  }
  p.options.set(Opt.VENDOR_CLASS, vendor);
  p.options.set(Opt.CLIENT_ARCH, Buffer.from([0, 0]));
  return serializePacket(p);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(base, 'ul-dhcp-cpu-'));
  const subnet = SubnetSchema.parse({ cidr: '198.18.0.0/15', range: { start: '198.18.2.0', end: '198.19.254.254' }, gateway: GIADDR, dns: ['198.18.0.1'], leaseTimeSec: 3600 });
  const server = new DhcpServer({
    mode: 'full',
    serverAddress: '198.18.0.1',
    subnets: () => [subnet],
    reservations: () => [],
    lookupMachine: () => ({ known: false, netboot: true }),
    bootUrls: { ipxeScript: 'http://198.18.0.1:8080/boot.ipxe', httpBoot: 'http://198.18.0.1:8080/ipxe/ipxe.efi' },
    leaseFile: join(dir, 'leases.jsonl'),
  });
  await server.init();
  // The client side is built before the clock starts: each REQUEST only gets its offered address written in.
  const discovers = Array.from({ length: clients }, (_, i) => datagram(MessageType.DISCOVER, i));
  const requests = Array.from({ length: clients }, (_, i) => datagram(MessageType.REQUEST, i, Buffer.from([0xff, 0xfe, 0xfd, 0xfc])));
  const at = requests[0]!.indexOf(Buffer.from([Opt.REQUESTED_IP, 4, 0xff, 0xfe, 0xfd, 0xfc])) + 2;
  if (at < 2 || parsePacket(requests[0]!).options.get(Opt.REQUESTED_IP)?.byteOffset !== requests[0]!.byteOffset + at) throw new Error('option 50 not found in the REQUEST template');
  let next = 0;
  let acks = 0;
  const one = async (i: number): Promise<void> => {
    const offer = await server.handlePacket(discovers[i]!, relay);
    if (!offer) throw new Error(`no OFFER for client ${i}`);
    serializePacket(offer.packet);
    const request = requests[i]!;
    encodeIp(offer.packet.yiaddr).copy(request, at);
    const ack = await server.handlePacket(request, relay);
    if (!ack || ack.packet.options.get(Opt.MESSAGE_TYPE)![0] !== MessageType.ACK) throw new Error(`no ACK for client ${i}`);
    serializePacket(ack.packet);
    acks++;
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (next < clients) await one(next++);
    }),
  );
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const journal = server.stats().leases?.journal;
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
  console.log(
    `dhcp-cpu: ${acks} leases, inflight ${inflight}: CPU per 1,000 leases ${((cpuMs * 1000) / acks).toFixed(1)} ms (user ${(cpu.user / 1000).toFixed(0)} ms, sys ${(cpu.system / 1000).toFixed(0)} ms); ` +
      `${((acks * 1000) / wallMs).toFixed(0)} leases/s wall; journal ${journal?.batches ?? '?'} fsync batches (${(acks / (journal?.batches ?? NaN)).toFixed(1)} leases each)`,
  );
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
