/**
 * CPU per lease of the agent's DHCP path in one process, without sockets: what the boot bench's leases/s
 * depends on once the generator is not the limit, measured in a way that survives a busy machine
 * (process CPU time, not wall time).
 *
 *   node dist/scripts/bench/boot/dhcp-cpu.js [--clients 20000] [--inflight 64] [--dir /var/tmp] [--net native|js]
 *
 * N relayed BIOS PXE clients (the datagrams perfdhcp sends: giaddr, options 60 and 93) each do DISCOVER →
 * OFFER → REQUEST → ACK through `DhcpServer.handlePacket` (decode, lease store, reply) and
 * `serializePacket`, `--inflight` exchanges at a time, with the lease journal on disk (every ACK after its
 * fdatasync). Prints CPU ms per 1,000 leases (user + system, all threads of this process), leases/s and the
 * journal's batches.
 *
 * `--net native|js`: the same exchanges over UDP on loopback, through the server's sockets (the addon's
 * recvmmsg/sendmmsg path or node:dgram, agent/dhcp/udp.ts): the client is a child process (a relay on
 * 127.0.0.2), so the CPU printed is the server's alone, sockets included.
 */
import { fork } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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
const net = arg('net', '');
const NET_PORT = Number(arg('port', '16767'));

const GIADDR = '198.19.0.1';
const relay: Incoming = { from: { address: GIADDR, port: 67 }, localAddress: '198.18.0.1', listener: 'dhcp' };
const vendor = Buffer.from('PXEClient:Arch:00000:UNDI:002001');

function datagram(type: number, i: number, offered?: Buffer, giaddr = GIADDR, serverId = '198.18.0.1'): Buffer {
  const mac = `02:42:${[(i >>> 24) & 255, (i >>> 16) & 255, (i >>> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  const p = emptyPacket(BOOTREQUEST, mac, i + 1);
  p.giaddr = giaddr;
  p.hops = 1;
  p.options.set(Opt.MESSAGE_TYPE, Buffer.from([type]));
  if (offered) {
    p.options.set(Opt.REQUESTED_IP, offered);
    p.options.set(Opt.SERVER_ID, encodeIp(serverId));
  }
  p.options.set(Opt.VENDOR_CLASS, vendor);
  p.options.set(Opt.CLIENT_ARCH, Buffer.from([0, 0]));
  return serializePacket(p);
}

/** The relay side of `--net` (a child process): DORA for `clients` MACs, `inflight` at a time, over UDP. */
async function netClient(): Promise<void> {
  const sock = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => sock.bind(NET_PORT, '127.0.0.2', () => r()));
  sock.setRecvBufferSize(4 * 1024 * 1024);
  const discovers = Array.from({ length: clients }, (_, i) => datagram(MessageType.DISCOVER, i, undefined, '127.0.0.2'));
  const requests = Array.from({ length: clients }, (_, i) => datagram(MessageType.REQUEST, i, Buffer.from([0xff, 0xfe, 0xfd, 0xfc]), '127.0.0.2', '127.0.0.1'));
  const at = requests[0]!.indexOf(Buffer.from([Opt.REQUESTED_IP, 4, 0xff, 0xfe, 0xfd, 0xfc])) + 2;
  let next = 0;
  let acks = 0;
  let resent = 0;
  // A datagram lost on a busy machine is sent again after a second without an answer (a closed loop would
  // otherwise wait for it forever): client → [message, sent at].
  const waiting = new Map<number, [Buffer, number]>();
  const send = (i: number, b: Buffer) => {
    waiting.set(i, [b, performance.now()]);
    sock.send(b, NET_PORT, '127.0.0.1');
  };
  const start = () => {
    if (next < clients) {
      const i = next++;
      send(i, discovers[i]!);
    }
  };
  const retry = setInterval(() => {
    const old = performance.now() - 1000;
    for (const [i, [b, at]] of waiting)
      if (at < old) {
        resent++;
        send(i, b);
      }
  }, 250);
  await new Promise<void>((resolve) => {
    sock.on('message', (m) => {
      const i = m.readUInt32BE(4) - 1; // xid = client + 1
      const type = parsePacket(m).options.get(Opt.MESSAGE_TYPE)![0];
      if (type === MessageType.OFFER) {
        if (waiting.get(i)?.[0] !== discovers[i]) return; // a late duplicate
        m.copy(requests[i]!, at, 16, 20); // yiaddr
        send(i, requests[i]!);
      } else if (type === MessageType.ACK) {
        if (!waiting.delete(i)) return; // a late duplicate
        acks++;
        if (acks === clients) resolve();
        else start();
      }
    });
    process.send!('go');
    for (let k = 0; k < inflight; k++) start();
  });
  clearInterval(retry);
  sock.close();
  process.send!(`done ${acks} ${resent}`);
}

async function main(): Promise<void> {
  if (process.argv.includes('--net-client')) return netClient();
  const dir = mkdtempSync(join(base, 'ul-dhcp-cpu-'));
  const subnet = SubnetSchema.parse({ cidr: '198.18.0.0/15', range: { start: '198.18.2.0', end: '198.19.254.254' }, gateway: GIADDR, dns: ['198.18.0.1'], leaseTimeSec: 3600 });
  if (net) return netMain(dir);
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

async function netMain(dir: string): Promise<void> {
  const subnet = SubnetSchema.parse({ cidr: '127.0.0.0/8', range: { start: '127.1.0.0', end: '127.3.255.254' }, gateway: '127.0.0.2', dns: ['127.0.0.1'], leaseTimeSec: 3600 });
  const server = new DhcpServer({
    mode: 'full',
    serverAddress: '127.0.0.1',
    port: NET_PORT,
    io: net === 'js' ? 'js' : 'auto',
    subnets: () => [subnet],
    reservations: () => [],
    lookupMachine: () => ({ known: false, netboot: true }),
    bootUrls: { ipxeScript: 'http://127.0.0.1:8080/boot.ipxe', httpBoot: 'http://127.0.0.1:8080/ipxe/ipxe.efi' },
    leaseFile: join(dir, 'leases.jsonl'),
  });
  await server.start();
  if (server.io() !== (net === 'js' ? 'js' : 'native')) throw new Error(`asked for ${net} sockets, got ${server.io()}`);
  const child = fork(fileURLToPath(import.meta.url), ['--net-client', '--clients', String(clients), '--inflight', String(inflight), '--port', String(NET_PORT)]);
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  let resent = 0;
  const acks = await new Promise<number>((resolve, reject) => {
    child.on('message', (m: string) => {
      if (m === 'go') {
        cpu0 = process.cpuUsage();
        t0 = performance.now();
      } else if (m.startsWith('done ')) {
        const [a, r] = m.slice(5).split(' ').map(Number);
        resent = r!;
        resolve(a!);
      }
    });
    child.once('exit', (code) => reject(new Error(`client exited ${code}`)));
  });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const st = server.stats();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
  const j = st.leases?.journal;
  console.log(
    `dhcp-cpu --net ${server.io() ?? net}: ${acks} leases over UDP, inflight ${inflight}: server CPU per 1,000 leases ${(((cpu.user + cpu.system) / 1000) * 1000 / acks).toFixed(1)} ms ` +
      `(user ${(cpu.user / 1000).toFixed(0)} ms, sys ${(cpu.system / 1000).toFixed(0)} ms); ${((acks * 1000) / wallMs).toFixed(0)} leases/s wall; journal ${j?.batches ?? '?'} fsync batches; errors ${st.errors}; client resends ${resent}`,
  );
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
