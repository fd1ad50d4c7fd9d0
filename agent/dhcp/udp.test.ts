import { describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SubnetSchema } from '../../shared/dhcp/config.js';
import { nativeAddon } from '../tftp/native-data-path.js';
import { MessageType, Opt } from './options.js';
import { BOOTREQUEST, emptyPacket, MAX_PACKET_SIZE, parsePacket, serializePacket, type DhcpPacket } from './packet.js';
import { DhcpServer } from './server.js';
import { openUdpSocket, selectDhcpIo } from './udp.js';

const native = selectDhcpIo('auto').kind === 'native';

function discover(mac: string, giaddr: string): Buffer {
  const p = emptyPacket(BOOTREQUEST, mac, Math.floor(Math.random() * 0xffffffff));
  p.giaddr = giaddr;
  p.options.set(Opt.MESSAGE_TYPE, Buffer.from([MessageType.DISCOVER]));
  return serializePacket(p);
}

async function bound(address: string, port: number): Promise<Socket> {
  const s = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r, j) => {
    s.once('error', j);
    s.bind(port, address, () => r());
  });
  return s;
}

describe('selectDhcpIo', () => {
  it('falls back to node:dgram when the addon is missing or predates dhcp_io.c, and when asked to', () => {
    expect(selectDhcpIo('auto', () => ({ ok: false, reason: 'addon not built' }))).toEqual({ kind: 'js', reason: 'addon not built' });
    const old = selectDhcpIo('auto', () => ({ ok: true, path: '/x/underlay_tftp.node', addon: { start: () => ({}), cancel: () => undefined } }));
    expect(old.kind).toBe('js');
    expect(old.reason).toMatch(/no DHCP socket functions/);
    expect(selectDhcpIo('js')).toEqual({ kind: 'js' });
  });

  it('the built addon has the DHCP socket functions (npm run build compiles dhcp_io.c)', () => {
    const l = nativeAddon();
    expect(l.ok ? selectDhcpIo('auto').kind : l.reason).toBe('native');
  });
});

describe.each([{ io: 'auto' as const, kind: 'native' as const }, { io: 'js' as const, kind: 'js' as const }])('DhcpServer sockets, $kind path (loopback only)', ({ io, kind }) => {
  it.skipIf(kind === 'native' && !native)('drops truncated, oversize and garbage datagrams alike, keeps serving, and answers a burst larger than one batch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ul-dhcp-udp-'));
    const dropped: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => { const o = JSON.parse(line) as { msg: string; code?: string }; if (o.msg === 'dhcp: malformed packet dropped') dropped.push(o.code!); } });
    const client = await bound('127.0.0.1', 0);
    const port = client.address().port + 1;
    // Replies to a relay go to giaddr:<server port>.
    const relayIn = await bound('127.0.0.2', port);
    const loop = SubnetSchema.parse({ cidr: '127.0.0.0/8', range: { start: '127.0.9.1', end: '127.0.9.250' } });
    const s = new DhcpServer({
      mode: 'full', serverAddress: '127.0.0.1', port, io, subnets: () => [loop], reservations: () => [], lookupMachine: () => ({ known: false, netboot: true }),
      bootUrls: { ipxeScript: 'http://127.0.0.1:8080/boot.ipxe', httpBoot: 'http://127.0.0.1:8080/ipxe/ipxe.efi' }, leaseFile: join(dir, 'l.jsonl'), logger,
    });
    const offers: DhcpPacket[] = [];
    relayIn.on('message', (m) => offers.push(parsePacket(m)));
    const until = async (done: () => boolean) => {
      for (let t = 0; t < 500 && !done(); t++) await new Promise((r) => setTimeout(r, 20));
    };
    try {
      await s.start();
      expect(s.io()).toBe(kind);
      const send = (b: Buffer) => client.send(b, port, '127.0.0.1');
      const good = discover('02:00:00:00:09:00', '127.0.0.2');
      send(good.subarray(0, 100)); // truncated header
      send(Buffer.concat([good, Buffer.alloc(5000 - good.length)])); // valid start, 5,000 bytes: above MAX_PACKET_SIZE
      const garbage = Buffer.from(good);
      garbage[240] = Opt.MESSAGE_TYPE;
      garbage[241] = 250; // option 53 claims 250 bytes
      send(garbage);
      send(Buffer.alloc(65_000, 0xff)); // huge: cut at one slot on the native path, whole on dgram; oversize both ways
      await until(() => dropped.length === 4);
      // (The intake takes what does not read as a DISCOVER first: compared without order.)
      expect(dropped.sort()).toEqual(['option_overrun', 'oversize', 'oversize', 'truncated']);
      expect(MAX_PACKET_SIZE).toBeLessThan(5000);
      // Still serving: 100 DISCOVERs sent at once (more than one recvmmsg batch of 32 and one sendmmsg batch).
      for (let i = 0; i < 100; i++) send(discover(`02:00:00:00:0a:${i.toString(16).padStart(2, '0')}`, '127.0.0.2'));
      await until(() => offers.length === 100);
      expect(offers).toHaveLength(100);
      expect(offers.every((o) => o.options.get(Opt.MESSAGE_TYPE)![0] === MessageType.OFFER)).toBe(true);
      expect(new Set(offers.map((o) => o.chaddr)).size).toBe(100);
      expect(new Set(offers.map((o) => o.yiaddr)).size).toBe(100);
      const st = s.stats();
      expect(st.received).toBe(104);
      expect(st.malformed).toBe(4);
      expect(st.sent.OFFER).toBe(100);
      expect(st.errors).toBe(0);
    } finally {
      await s.stop();
      client.close();
      relayIn.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(kind === 'native' && !native)('a send the kernel refuses is reported with its code and the next sends still go', async () => {
    const errors: (Error & { code?: string })[] = [];
    const got: Buffer[] = [];
    const peer = await bound('127.0.0.1', 0);
    peer.on('message', (m) => got.push(m));
    const s = await openUdpSocket(io, { address: '127.0.0.1', port: 0, broadcast: false, recvBufferSize: 1 << 16, onDatagram: () => undefined, onError: (e) => errors.push(e) });
    try {
      expect(s.kind).toBe(kind);
      s.send(Buffer.from('one'), peer.address().port, '127.0.0.1');
      s.send(Buffer.from('refused'), 67, '255.255.255.255'); // a broadcast without SO_BROADCAST: EACCES
      s.send(Buffer.from('two'), peer.address().port, '127.0.0.1');
      for (let t = 0; t < 250 && (got.length < 2 || errors.length < 1); t++) await new Promise((r) => setTimeout(r, 20));
      expect(got.map((b) => b.toString()).sort()).toEqual(['one', 'two']);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.code).toBe('EACCES');
    } finally {
      await s.close();
      peer.close();
    }
  });

  it.skipIf(kind === 'native' && !native)('a port already taken without SO_REUSEADDR fails start with the errno code, and nothing stays bound', async () => {
    const taken = createSocket({ type: 'udp4' });
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', () => r()));
    const port = taken.address().port;
    const loop = SubnetSchema.parse({ cidr: '127.0.0.0/8', range: { start: '127.0.9.1', end: '127.0.9.9' } });
    const s = new DhcpServer({
      mode: 'proxy', serverAddress: '127.0.0.1', port: port + 1, proxyPort: port, io, subnets: () => [loop], reservations: () => [], lookupMachine: () => ({ known: false, netboot: true }),
      bootUrls: { ipxeScript: 'http://127.0.0.1:8080/boot.ipxe', httpBoot: 'http://127.0.0.1:8080/ipxe/ipxe.efi' },
    });
    try {
      await expect(s.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
      // The sockets opened before the failure were closed: the DHCP port can be bound again exclusively.
      const again = createSocket({ type: 'udp4' });
      await new Promise<void>((r, j) => {
        again.once('error', j);
        again.bind(port + 1, '127.0.0.1', () => r());
      });
      again.close();
    } finally {
      await s.stop();
      taken.close();
    }
  });
});
