import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { pino } from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReservationSchema, SubnetSchema, type LeaseEvent, type MachineFacts, type Reservation, type Subnet } from '../../shared/dhcp/config.js';
import { decodeIp, decodeIps, decodeU32, encodeIp, encodeSubOptions, encodeU16, MessageType, Opt } from './options.js';
import { BOOTREQUEST, emptyPacket, FLAG_BROADCAST, parsePacket, serializePacket, type DhcpPacket } from './packet.js';
import { DhcpServer, type DhcpServerOptions, type Incoming } from './server.js';

const lan = SubnetSchema.parse({
  cidr: '198.18.0.0/24',
  range: { start: '198.18.0.100', end: '198.18.0.110' },
  gateway: '198.18.0.1',
  dns: ['198.18.0.1', '198.18.0.2'],
  domain: 'rack1.test',
  leaseTimeSec: 1200,
  options: { '42': '198.18.0.1' },
});
const remote = SubnetSchema.parse({ cidr: '198.18.1.0/24', range: { start: '198.18.1.100', end: '198.18.1.110' }, gateway: '198.18.1.1' });
const locked = SubnetSchema.parse({ cidr: '198.18.2.0/24', range: { start: '198.18.2.100', end: '198.18.2.110' }, reservationsOnly: true });

const BCAST: Incoming = { from: { address: '0.0.0.0', port: 68 }, localAddress: '0.0.0.0', listener: 'dhcp' };

function req(type: number, mac: string, f: (p: DhcpPacket) => void = () => {}): Buffer {
  const p = emptyPacket(BOOTREQUEST, mac, Math.floor(Math.random() * 0xffffffff));
  p.options.set(Opt.MESSAGE_TYPE, Buffer.from([type]));
  f(p);
  return serializePacket(p);
}
const pxe = (arch: number) => (p: DhcpPacket) => {
  p.options.set(Opt.VENDOR_CLASS, Buffer.from(`PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:003000`));
  p.options.set(Opt.CLIENT_ARCH, encodeU16(arch));
  p.options.set(Opt.CLIENT_UUID, Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 7)]));
};
const typeOf = (p: DhcpPacket) => p.options.get(Opt.MESSAGE_TYPE)![0];

describe('DhcpServer (handlePacket)', () => {
  let dir: string;
  let servers: DhcpServer[] = [];
  let events: LeaseEvent[];
  let reservations: Reservation[];
  let machines: Record<string, MachineFacts>;
  let subnets: Subnet[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ul-dhcp-'));
    events = [];
    reservations = [ReservationSchema.parse({ mac: '02:00:00:00:00:99', address: '198.18.0.50', hostname: 'node99' }), ReservationSchema.parse({ mac: '02:00:00:00:02:01', address: '198.18.2.5' })];
    machines = {};
    subnets = [lan, remote, locked];
  });
  afterEach(async () => {
    for (const s of servers) await s.stop();
    servers = [];
    rmSync(dir, { recursive: true, force: true });
  });

  async function server(over: Partial<DhcpServerOptions> = {}): Promise<DhcpServer> {
    const s = new DhcpServer({
      mode: 'full',
      serverAddress: '198.18.0.1',
      subnets: () => subnets,
      reservations: () => reservations,
      lookupMachine: (mac) => machines[mac] ?? { known: false, netboot: true },
      bootUrls: { ipxeScript: 'http://198.18.0.1:8080/boot.ipxe', httpBoot: 'http://198.18.0.1:8080/ipxe/ipxe.efi' },
      leaseFile: join(dir, 'leases.jsonl'),
      onLeaseEvent: (e) => events.push(e),
      ...over,
    });
    await s.init();
    servers.push(s);
    return s;
  }

  async function dora(s: DhcpServer, mac: string, f: (p: DhcpPacket) => void = () => {}) {
    const offer = await s.handlePacket(req(MessageType.DISCOVER, mac, f), BCAST);
    expect(offer).not.toBeNull();
    const ack = await s.handlePacket(
      req(MessageType.REQUEST, mac, (p) => {
        f(p);
        p.options.set(Opt.SERVER_ID, encodeIp('198.18.0.1'));
        p.options.set(Opt.REQUESTED_IP, encodeIp(offer!.packet.yiaddr));
      }),
      BCAST,
    );
    return { offer: offer!, ack: ack! };
  }

  it('rejects invalid options at construction', () => {
    expect(() => new DhcpServer({ mode: 'full', serverAddress: '198.18.0.300' } as DhcpServerOptions)).toThrow(/invalid DHCP server options/);
    expect(
      () =>
        new DhcpServer({
          mode: 'full',
          serverAddress: '198.18.0.1',
          subnets: () => [],
          reservations: () => [],
          lookupMachine: () => ({ known: false, netboot: true }),
          bootUrls: { ipxeScript: 'http://x/boot.ipxe', httpBoot: 'http://x/ipxe/ipxe.efi' },
        }),
    ).toThrow(/leaseFile/);
  });

  it('DORA: offer then ack with subnet options, lease times and a broadcast destination', async () => {
    const s = await server();
    const { offer, ack } = await dora(s, '02:00:00:00:00:01');
    expect(typeOf(offer.packet)).toBe(MessageType.OFFER);
    expect(typeOf(ack.packet)).toBe(MessageType.ACK);
    expect(ack.packet.yiaddr).toBe(offer.packet.yiaddr);
    const o = ack.packet.options;
    expect(decodeIp(1, o.get(Opt.SUBNET_MASK)!)).toBe('255.255.255.0');
    expect(decodeIps(3, o.get(Opt.ROUTER)!)).toEqual(['198.18.0.1']);
    expect(decodeIps(6, o.get(Opt.DNS)!)).toEqual(['198.18.0.1', '198.18.0.2']);
    expect(o.get(Opt.DOMAIN)!.toString()).toBe('rack1.test');
    expect(decodeU32(51, o.get(Opt.LEASE_TIME)!)).toBe(1200);
    expect(decodeU32(58, o.get(Opt.T1)!)).toBe(600);
    expect(decodeIp(54, o.get(Opt.SERVER_ID)!)).toBe('198.18.0.1');
    expect(decodeIps(42, o.get(42)!)).toEqual(['198.18.0.1']);
    expect(ack.to).toEqual({ address: '255.255.255.255', port: 68, broadcast: true });
    expect(ack.packet.file).toBe(''); // not a PXE client
    expect(events.map((e) => [e.type, e.address])).toEqual([['lease', ack.packet.yiaddr]]);
    expect(s.leases().find((l) => l.address === ack.packet.yiaddr)?.state).toBe('bound');
  });

  it('PXE BIOS client gets undionly.kpxe, siaddr, option 43 and its option 97 back', async () => {
    const s = await server();
    const { ack } = await dora(s, '02:00:00:00:00:02', pxe(0));
    expect(ack.packet.file).toBe('undionly.kpxe');
    expect(ack.packet.siaddr).toBe('198.18.0.1');
    expect(ack.packet.options.get(Opt.VENDOR)).toEqual(Buffer.from([6, 1, 8, 255]));
    expect(ack.packet.options.get(Opt.VENDOR_CLASS)!.toString()).toBe('PXEClient');
    expect(ack.packet.options.get(Opt.CLIENT_UUID)!.length).toBe(17);
  });

  it('netboot disallowed: address, but no boot file', async () => {
    machines['02:00:00:00:00:03'] = { known: true, netboot: false };
    const s = await server();
    const { ack } = await dora(s, '02:00:00:00:00:03', pxe(7));
    expect(ack.packet.yiaddr).not.toBe('0.0.0.0');
    expect(ack.packet.file).toBe('');
    expect(ack.packet.options.has(Opt.VENDOR)).toBe(false);
  });

  it('counts replies by subnet: offer and ack of a DORA, and a NAK under the subnet it refused', async () => {
    const s = await server();
    await dora(s, '02:00:00:00:00:98');
    const nak = await s.handlePacket(req(MessageType.REQUEST, '02:00:00:00:00:97', (p) => {
      p.options.set(Opt.SERVER_ID, encodeIp('198.18.0.1'));
      p.options.set(Opt.REQUESTED_IP, encodeIp('10.9.9.9'));
    }), BCAST);
    expect(nak!.packet.options.get(Opt.MESSAGE_TYPE)![0]).toBe(MessageType.NAK);
    expect(Object.values(s.stats().repliesBySubnet)).toEqual([{ OFFER: 1, ACK: 1, NAK: 1 }]);
  });

  it('reservation: the reserved address and hostname', async () => {
    const s = await server();
    const { ack } = await dora(s, '02:00:00:00:00:99');
    expect(ack.packet.yiaddr).toBe('198.18.0.50');
    expect(ack.packet.options.get(Opt.HOSTNAME)!.toString()).toBe('node99');
  });

  it('REQUEST for another server drops our offer silently', async () => {
    const s = await server();
    const offer = await s.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:00:04'), BCAST);
    const r = await s.handlePacket(req(MessageType.REQUEST, '02:00:00:00:00:04', (p) => {
      p.options.set(Opt.SERVER_ID, encodeIp('198.18.0.254'));
      p.options.set(Opt.REQUESTED_IP, encodeIp(offer!.packet.yiaddr));
    }), BCAST);
    expect(r).toBeNull();
    expect(s.stats().leases!.offers).toBe(0);
  });

  it('renewing (unicast, ciaddr) ACKs to ciaddr:68; another client\'s address is NAKed', async () => {
    const s = await server();
    const { ack } = await dora(s, '02:00:00:00:00:05');
    const addr = ack.packet.yiaddr;
    const renew = await s.handlePacket(req(MessageType.REQUEST, '02:00:00:00:00:05', (p) => (p.ciaddr = addr)), { from: { address: addr, port: 68 }, localAddress: '198.18.0.1', listener: 'dhcp' });
    expect(typeOf(renew!.packet)).toBe(MessageType.ACK);
    expect(renew!.packet.ciaddr).toBe(addr);
    expect(renew!.to).toEqual({ address: addr, port: 68, broadcast: false });
    const steal = await s.handlePacket(req(MessageType.REQUEST, '02:00:00:00:00:06', (p) => (p.ciaddr = addr)), { from: { address: addr, port: 68 }, localAddress: '198.18.0.1', listener: 'dhcp' });
    expect(typeOf(steal!.packet)).toBe(MessageType.NAK);
    expect(steal!.to.address).toBe('255.255.255.255');
  });

  it('init-reboot: ACK for the client\'s own address, NAK for a wrong subnet, silence without a record', async () => {
    const s = await server();
    const { ack } = await dora(s, '02:00:00:00:00:07');
    const reboot = (mac: string, a: string) => s.handlePacket(req(MessageType.REQUEST, mac, (p) => p.options.set(Opt.REQUESTED_IP, encodeIp(a))), BCAST);
    expect(typeOf((await reboot('02:00:00:00:00:07', ack.packet.yiaddr))!.packet)).toBe(MessageType.ACK);
    expect(typeOf((await reboot('02:00:00:00:00:07', '10.9.9.9'))!.packet)).toBe(MessageType.NAK);
    expect(typeOf((await reboot('02:00:00:00:00:08', ack.packet.yiaddr))!.packet)).toBe(MessageType.NAK);
    expect(await reboot('02:00:00:00:00:08', '198.18.0.109')).toBeNull();
  });

  it('RELEASE frees, DECLINE quarantines, INFORM answers without a lease', async () => {
    const s = await server();
    const { ack } = await dora(s, '02:00:00:00:00:09');
    const addr = ack.packet.yiaddr;
    expect(await s.handlePacket(req(MessageType.RELEASE, '02:00:00:00:00:09', (p) => { p.ciaddr = addr; p.options.set(Opt.SERVER_ID, encodeIp('198.18.0.1')); }), { from: { address: addr, port: 68 }, localAddress: '198.18.0.1', listener: 'dhcp' })).toBeNull();
    expect(s.leases().find((l) => l.address === addr)!.state).toBe('released');
    const o2 = await s.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:00:0a'), BCAST);
    expect(await s.handlePacket(req(MessageType.DECLINE, '02:00:00:00:00:0a', (p) => { p.options.set(Opt.REQUESTED_IP, encodeIp(o2!.packet.yiaddr)); p.options.set(Opt.SERVER_ID, encodeIp('198.18.0.1')); }), BCAST)).toBeNull();
    expect(s.leases().find((l) => l.address === o2!.packet.yiaddr)!.state).toBe('declined');
    const o3 = await s.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:00:0a'), BCAST);
    expect(o3!.packet.yiaddr).not.toBe(o2!.packet.yiaddr);
    const inform = await s.handlePacket(req(MessageType.INFORM, '02:00:00:00:00:0b', (p) => (p.ciaddr = '198.18.0.30')), { from: { address: '198.18.0.30', port: 68 }, localAddress: '198.18.0.1', listener: 'dhcp' });
    expect(typeOf(inform!.packet)).toBe(MessageType.ACK);
    expect(inform!.packet.yiaddr).toBe('0.0.0.0');
    expect(inform!.packet.options.has(Opt.LEASE_TIME)).toBe(false);
    expect(inform!.to).toEqual({ address: '198.18.0.30', port: 68, broadcast: false });
    expect(events.map((e) => e.type)).toEqual(['lease', 'release', 'decline']);
  });

  it('relay: subnet from giaddr, reply unicast to giaddr:67 from the targeted address, option 82 echoed last', async () => {
    const s = await server();
    const opt82 = encodeSubOptions([[1, Buffer.from('br1')], [2, Buffer.from('relay-a')]]);
    const out = await s.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:01:01', (p) => { p.giaddr = '198.18.1.1'; p.hops = 1; p.options.set(Opt.RELAY_AGENT, opt82); }), { from: { address: '198.18.0.2', port: 67 }, localAddress: '198.18.0.1', listener: 'dhcp' });
    expect(out!.packet.yiaddr.startsWith('198.18.1.')).toBe(true);
    expect(out!.to).toEqual({ address: '198.18.1.1', port: 67, broadcast: false });
    expect(out!.from).toBe('198.18.0.1');
    expect(out!.packet.giaddr).toBe('198.18.1.1');
    expect(decodeIps(3, out!.packet.options.get(Opt.ROUTER)!)).toEqual(['198.18.1.1']);
    expect(out!.packet.options.get(Opt.RELAY_AGENT)).toEqual(opt82);
    expect([...out!.packet.options.keys()].at(-1)).toBe(Opt.RELAY_AGENT);
    const wire = serializePacket(out!.packet);
    expect(parsePacket(wire).options.get(Opt.RELAY_AGENT)).toEqual(opt82);
  });

  it('relay: link selection (82.5) and option 118 override giaddr; server-id override is used as option 54', async () => {
    const s = await server();
    const viaLink = await s.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:01:02', (p) => { p.giaddr = '198.18.0.77'; p.options.set(Opt.RELAY_AGENT, encodeSubOptions([[5, encodeIp('198.18.1.0')], [11, encodeIp('198.18.1.1')]])); }), { from: { address: '198.18.0.77', port: 67 }, localAddress: '198.18.0.1', listener: 'dhcp' });
    expect(viaLink!.packet.yiaddr.startsWith('198.18.1.')).toBe(true);
    expect(decodeIp(54, viaLink!.packet.options.get(Opt.SERVER_ID)!)).toBe('198.18.1.1');
    // A REQUEST naming the override address as server id is ours.
    const ack = await s.handlePacket(req(MessageType.REQUEST, '02:00:00:00:01:02', (p) => { p.giaddr = '198.18.0.77'; p.options.set(Opt.RELAY_AGENT, encodeSubOptions([[5, encodeIp('198.18.1.0')], [11, encodeIp('198.18.1.1')]])); p.options.set(Opt.SERVER_ID, encodeIp('198.18.1.1')); p.options.set(Opt.REQUESTED_IP, encodeIp(viaLink!.packet.yiaddr)); }), { from: { address: '198.18.0.77', port: 67 }, localAddress: '198.18.0.1', listener: 'dhcp' });
    expect(typeOf(ack!.packet)).toBe(MessageType.ACK);
    const via118 = await s.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:01:03', (p) => p.options.set(Opt.SUBNET_SELECTION, encodeIp('198.18.1.0'))), BCAST);
    expect(via118!.packet.yiaddr.startsWith('198.18.1.')).toBe(true);
  });

  it('relay: a NAK goes to giaddr with the broadcast flag set', async () => {
    const s = await server();
    const nak = await s.handlePacket(req(MessageType.REQUEST, '02:00:00:00:01:04', (p) => { p.giaddr = '198.18.1.1'; p.options.set(Opt.REQUESTED_IP, encodeIp('198.18.0.105')); }), { from: { address: '198.18.1.1', port: 67 }, localAddress: '198.18.0.1', listener: 'dhcp' });
    expect(typeOf(nak!.packet)).toBe(MessageType.NAK);
    expect(nak!.to).toEqual({ address: '198.18.1.1', port: 67, broadcast: false });
    expect(nak!.packet.flags & FLAG_BROADCAST).toBe(FLAG_BROADCAST);
  });

  it('reservations-only subnet ignores unknown MACs and serves reserved ones', async () => {
    const s = await server();
    const at = (mac: string) => s.handlePacket(req(MessageType.DISCOVER, mac, (p) => (p.giaddr = '198.18.2.1')), { from: { address: '198.18.2.1', port: 67 }, localAddress: '198.18.0.1', listener: 'dhcp' });
    expect(await at('02:00:00:00:02:02')).toBeNull();
    expect((await at('02:00:00:00:02:01'))!.packet.yiaddr).toBe('198.18.2.5');
  });

  it('packets for no known subnet are ignored', async () => {
    const s = await server();
    expect(await s.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:03:01', (p) => (p.giaddr = '10.1.1.1')), { from: { address: '10.1.1.1', port: 67 }, localAddress: '198.18.0.1', listener: 'dhcp' })).toBeNull();
  });

  it('malformed packets are counted and dropped, never thrown', async () => {
    const s = await server();
    for (const b of [Buffer.alloc(10), Buffer.alloc(300), Buffer.from(req(MessageType.DISCOVER, '02:00:00:00:00:01').subarray(0, 241))]) {
      expect(await s.handlePacket(b, BCAST)).toBeNull();
    }
    expect(s.stats().malformed).toBe(3);
  });

  it('proxy mode: PXE DISCOVER on 67 gets boot info and no address; REQUEST on 4011 gets an ACK to the source port', async () => {
    const s = await server({ mode: 'proxy', leaseFile: undefined });
    expect(await s.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:04:01'), BCAST)).toBeNull(); // not PXE
    const offer = await s.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:04:01', pxe(7)), BCAST);
    expect(typeOf(offer!.packet)).toBe(MessageType.OFFER);
    expect(offer!.packet.yiaddr).toBe('0.0.0.0');
    expect(offer!.packet.file).toBe('ipxe.efi');
    expect(offer!.packet.options.has(Opt.LEASE_TIME)).toBe(false);
    expect(offer!.packet.options.has(Opt.SUBNET_MASK)).toBe(false);
    expect(offer!.to.address).toBe('255.255.255.255');
    // A REQUEST on 67 belongs to the real DHCP server.
    expect(await s.handlePacket(req(MessageType.REQUEST, '02:00:00:00:04:01', pxe(7)), BCAST)).toBeNull();
    const ack = await s.handlePacket(req(MessageType.REQUEST, '02:00:00:00:04:01', (p) => { pxe(7)(p); p.ciaddr = '198.18.0.140'; }), { from: { address: '198.18.0.140', port: 68 }, localAddress: '198.18.0.1', listener: 'proxy' });
    expect(typeOf(ack!.packet)).toBe(MessageType.ACK);
    expect(ack!.packet.yiaddr).toBe('0.0.0.0');
    expect(ack!.to).toEqual({ address: '198.18.0.140', port: 68, broadcast: false });
    machines['02:00:00:00:04:02'] = { known: true, netboot: false };
    expect(await s.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:04:02', pxe(0)), BCAST)).toBeNull();
  });

  it('mode off answers nothing', async () => {
    const s = await server({ mode: 'off', leaseFile: undefined });
    expect(await s.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:05:01', pxe(0)), BCAST)).toBeNull();
  });

  it('leases survive a restart of the server on the same file', async () => {
    const s = await server();
    const { ack } = await dora(s, '02:00:00:00:06:01');
    await s.stop();
    servers = servers.filter((x) => x !== s);
    const s2 = await server();
    const again = await s2.handlePacket(req(MessageType.DISCOVER, '02:00:00:00:06:01'), BCAST);
    expect(again!.packet.yiaddr).toBe(ack.packet.yiaddr);
    expect(s2.leases().some((l) => l.address === ack.packet.yiaddr && l.state === 'bound')).toBe(true);
  });
});

describe('DhcpServer sockets (loopback only)', () => {
  it('answers a relayed DISCOVER by unicast to giaddr and a proxy REQUEST on the proxy port', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ul-dhcp-sock-'));
    const relay = createSocket('udp4');
    await new Promise<void>((r) => relay.bind(0, '127.0.0.1', () => r()));
    const relayPort = relay.address().port;
    const loop = SubnetSchema.parse({ cidr: '127.0.0.0/8', range: { start: '127.0.9.1', end: '127.0.9.9' } });
    const common = {
      serverAddress: '127.0.0.1',
      subnets: () => [loop],
      reservations: () => [],
      lookupMachine: () => ({ known: false, netboot: true }),
      bootUrls: { ipxeScript: 'http://127.0.0.1:8080/boot.ipxe', httpBoot: 'http://127.0.0.1:8080/ipxe/ipxe.efi' },
    };
    // The server answers relays on its own port: make it the relay's port so the reply reaches our socket.
    const full = new DhcpServer({ ...common, mode: 'full', port: relayPort + 1, leaseFile: join(dir, 'l.jsonl') });
    try {
    try {
      // Port numbers: server listens on relayPort+1; replies to a relay go to giaddr:<server port>, so listen there.
      const relayIn = createSocket({ type: 'udp4', reuseAddr: true });
      await new Promise<void>((r, j) => { relayIn.once('error', j); relayIn.bind(relayPort + 1, '127.0.0.2', () => r()); });
      await full.start();
      const got = new Promise<DhcpPacket>((resolve) => relayIn.once('message', (m) => resolve(parsePacket(m))));
      relay.send(req(MessageType.DISCOVER, '02:00:00:00:07:01', (p) => (p.giaddr = '127.0.0.2')), relayPort + 1, '127.0.0.1');
      const offer = await got;
      expect(typeOf(offer)).toBe(MessageType.OFFER);
      expect(offer.yiaddr.startsWith('127.0.9.')).toBe(true);
      relayIn.close();
    } finally {
      await full.stop();
    }
    const proxy = new DhcpServer({ ...common, mode: 'proxy', port: relayPort + 2, proxyPort: relayPort + 3 });
    try {
      await proxy.start();
      const got = new Promise<{ p: DhcpPacket; port: number; address: string }>((resolve) => relay.once('message', (m, ri) => resolve({ p: parsePacket(m), port: ri.port, address: ri.address })));
      relay.send(req(MessageType.REQUEST, '02:00:00:00:07:02', pxe(0)), relayPort + 3, '127.0.0.1');
      const ack = await got;
      expect(typeOf(ack.p)).toBe(MessageType.ACK);
      expect(ack.p.file).toBe('undionly.kpxe');
      expect(ack.port).toBe(relayPort + 3);
      expect(proxy.stats().sent.ACK).toBe(1);
    } finally {
      await proxy.stop();
    }
    } finally {
      relay.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('DhcpServer intake (loopback only)', () => {
  it('handles a REQUEST that arrives behind a burst of DISCOVERs before them (an exchange in progress first)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ul-dhcp-intake-'));
    const seen: { type?: string; mac?: string }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => { const o = JSON.parse(line) as { msg: string; type?: string; mac?: string }; if (o.msg === 'dhcp: request received') seen.push({ type: o.type, mac: o.mac }); } });
    const client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    const port = client.address().port + 1;
    const loop = SubnetSchema.parse({ cidr: '127.0.0.0/8', range: { start: '127.0.9.1', end: '127.0.9.250' } });
    const s = new DhcpServer({
      mode: 'full', serverAddress: '127.0.0.1', port, subnets: () => [loop], reservations: () => [], lookupMachine: () => ({ known: false, netboot: true }),
      bootUrls: { ipxeScript: 'http://127.0.0.1:8080/boot.ipxe', httpBoot: 'http://127.0.0.1:8080/ipxe/ipxe.efi' }, leaseFile: join(dir, 'l.jsonl'), logger,
    });
    try {
      await s.start();
      // Relayed to 127.0.0.3: replies go there (nobody listens), the test reads the server's own log.
      const relayed = (p: DhcpPacket) => (p.giaddr = '127.0.0.3');
      // Sent in one go while the server's loop is busy with this test: one read batch on its socket.
      for (let i = 0; i < 20; i++) client.send(req(MessageType.DISCOVER, `02:00:00:00:08:${i.toString(16).padStart(2, '0')}`, relayed), port, '127.0.0.1');
      client.send(req(MessageType.REQUEST, '02:00:00:00:08:ff', (p) => { relayed(p); p.options.set(Opt.SERVER_ID, encodeIp('127.0.0.1')); p.options.set(Opt.REQUESTED_IP, encodeIp('127.0.9.250')); }), port, '127.0.0.1');
      for (let t = 0; t < 100 && seen.length < 21; t++) await new Promise((r) => setTimeout(r, 20));
      expect(seen).toHaveLength(21);
      expect(seen[0]).toEqual({ type: 'REQUEST', mac: '02:00:00:00:08:ff' });
      expect(seen.slice(1).every((x) => x.type === 'DISCOVER')).toBe(true);
      expect(s.stats().intake.highWater).toBeGreaterThan(1);
    } finally {
      await s.stop();
      client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
