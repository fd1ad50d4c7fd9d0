/**
 * A crafted DHCP client built on the agent's codec, for cases no packaged client covers (DECLINE, PXE
 * DISCOVER to a proxyDHCP, port 4011). Runs inside a client namespace whose eth0 has a host route for
 * 255.255.255.255 (no address). Argument: a JSON object; prints one JSON result on stdout.
 */
import { createSocket, type Socket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { decodeIp, encodeIp, encodeU16, MessageType, Opt } from '../../agent/dhcp/options.js';
import { BOOTREQUEST, emptyPacket, FLAG_BROADCAST, parsePacket, serializePacket, type DhcpPacket } from '../../agent/dhcp/packet.js';

const args = JSON.parse(process.argv[2]!) as { mode: 'decline' | 'pxe'; mac: string; arch?: number; proxy?: string };

function summary(p: DhcpPacket) {
  const o = p.options;
  return {
    type: o.get(Opt.MESSAGE_TYPE)?.[0],
    yiaddr: p.yiaddr,
    siaddr: p.siaddr,
    file: p.file,
    serverId: o.has(Opt.SERVER_ID) ? decodeIp(54, o.get(Opt.SERVER_ID)!) : undefined,
    vendorClass: o.get(Opt.VENDOR_CLASS)?.toString(),
    vendor43: o.get(Opt.VENDOR)?.toString('hex'),
    leaseTime: o.get(Opt.LEASE_TIME)?.readUInt32BE(0),
  };
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = createSocket({ type: 'udp4', reuseAddr: true });
    s.bind(port, '0.0.0.0', () => {
      s.setBroadcast(true);
      resolve(s);
    });
  });
}

/** Collect replies for `xid` until `done` says so or `ms` pass (a bound, not an assertion). */
function collect(s: Socket, xid: number, done: (got: DhcpPacket[]) => boolean, ms = 10_000): Promise<DhcpPacket[]> {
  return new Promise((resolve) => {
    const got: DhcpPacket[] = [];
    const finish = () => {
      clearTimeout(t);
      s.off('message', on);
      resolve(got);
    };
    const on = (m: Buffer) => {
      try {
        const p = parsePacket(m);
        if (p.xid !== xid || p.op !== 2) return;
        got.push(p);
        if (done(got)) finish();
      } catch {
        /* not ours */
      }
    };
    const t = setTimeout(finish, ms);
    s.on('message', on);
  });
}

function request(type: number, f: (p: DhcpPacket) => void = () => {}): DhcpPacket {
  const p = emptyPacket(BOOTREQUEST, args.mac, randomInt(1, 0xffffffff));
  p.flags = FLAG_BROADCAST;
  p.options.set(Opt.MESSAGE_TYPE, Buffer.from([type]));
  f(p);
  return p;
}

const send = (s: Socket, p: DhcpPacket, port: number, addr: string) => new Promise<void>((r, j) => s.send(serializePacket(p), port, addr, (e) => (e ? j(e) : r())));

async function decline() {
  const s = await open(68);
  const d1 = request(MessageType.DISCOVER);
  const w1 = collect(s, d1.xid, (g) => g.length > 0);
  await send(s, d1, 67, '255.255.255.255');
  const [offer] = await w1;
  if (!offer) throw new Error('no OFFER');
  const serverId = decodeIp(54, offer.options.get(Opt.SERVER_ID)!);
  const dec = request(MessageType.DECLINE, (p) => {
    p.flags = 0;
    p.options.set(Opt.REQUESTED_IP, encodeIp(offer.yiaddr));
    p.options.set(Opt.SERVER_ID, encodeIp(serverId));
  });
  await send(s, dec, 67, '255.255.255.255');
  const d2 = request(MessageType.DISCOVER);
  const w2 = collect(s, d2.xid, (g) => g.length > 0);
  await send(s, d2, 67, '255.255.255.255');
  const [offer2] = await w2;
  s.close();
  return { first: summary(offer), second: offer2 ? summary(offer2) : null };
}

async function pxe() {
  const arch = args.arch ?? 0;
  const pxeOpts = (p: DhcpPacket) => {
    p.options.set(Opt.VENDOR_CLASS, Buffer.from(`PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:002001`));
    p.options.set(Opt.CLIENT_ARCH, encodeU16(arch));
    p.options.set(Opt.CLIENT_NDI, Buffer.from([1, 2, 1]));
    p.options.set(Opt.CLIENT_UUID, Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 0xab)]));
    p.options.set(Opt.PARAM_LIST, Buffer.from([1, 3, 6, 43, 60, 66, 67, 128, 129, 130]));
  };
  const s = await open(68);
  const disc = request(MessageType.DISCOVER, pxeOpts);
  // Wait for both the address OFFER (dnsmasq) and the boot OFFER (proxy).
  const w = collect(s, disc.xid, (g) => g.some((p) => p.yiaddr !== '0.0.0.0') && g.some((p) => p.yiaddr === '0.0.0.0'));
  await send(s, disc, 67, '255.255.255.255');
  const offers = await w;
  const addrOffer = offers.find((p) => p.yiaddr !== '0.0.0.0');
  const bootOffer = offers.find((p) => p.yiaddr === '0.0.0.0');
  const result: Record<string, unknown> = { offers: offers.map(summary) };
  if (!addrOffer || !bootOffer) {
    s.close();
    return result;
  }
  // Take the address from the real DHCP server, as firmware does.
  const req = request(MessageType.REQUEST, (p) => {
    pxeOpts(p);
    p.options.set(Opt.REQUESTED_IP, encodeIp(addrOffer.yiaddr));
    p.options.set(Opt.SERVER_ID, addrOffer.options.get(Opt.SERVER_ID)!);
  });
  const wa = collect(s, req.xid, (g) => g.some((p) => p.options.get(Opt.MESSAGE_TYPE)?.[0] === MessageType.ACK));
  await send(s, req, 67, '255.255.255.255');
  const acks = await wa;
  result.acks = acks.map(summary);
  s.close();
  const ack = acks.find((p) => p.options.get(Opt.MESSAGE_TYPE)?.[0] === MessageType.ACK);
  if (!ack) return result;
  execFileSync('ip', ['addr', 'add', `${ack.yiaddr}/24`, 'dev', 'eth0']);
  // Boot server request to the proxy on 4011, from an ephemeral port: the answer must come back to it.
  const u = await open(0);
  const r4011 = request(MessageType.REQUEST, (p) => {
    pxeOpts(p);
    p.flags = 0;
    p.ciaddr = ack.yiaddr;
  });
  const wp = collect(u, r4011.xid, (g) => g.length > 0);
  await send(u, r4011, 4011, args.proxy ?? summary(bootOffer).serverId!);
  const [proxyAck] = await wp;
  result.sourcePort = u.address().port;
  result.proxyAck = proxyAck ? summary(proxyAck) : null;
  u.close();
  return result;
}

const result = args.mode === 'decline' ? await decline() : await pxe();
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(0);
