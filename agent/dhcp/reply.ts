/**
 * Building server replies: header fields per RFC 2131 table 3, the subnet's options, PXE boot fields, and
 * echoes (option 82 unchanged and last, option 97 for PXE clients).
 *
 * Option values that depend only on configuration (a subnet's options, lease times, the server id, boot
 * file names, the message type) are encoded once and shared between replies: a reply's option Buffers are
 * read-only (serializePacket copies them). The memos are small and bounded.
 */
import type { Subnet } from '../../shared/dhcp/config.js';
import { broadcastOf, maskOf } from '../../shared/dhcp/ip.js';
import { encodeConfiguredOption, encodeIp, encodeIps, encodeU32, MessageType, Opt, pxeVendorOptions } from './options.js';
import { BOOTREPLY, FLAG_BROADCAST, type DhcpPacket } from './packet.js';
import type { BootDecision } from './pxe.js';
import type { ClientRequest } from './request.js';

export interface ReplySpec {
  type: (typeof MessageType)[keyof typeof MessageType];
  serverId: string;
  yiaddr?: string;
  subnet?: Subnet;
  /** Lease options (51, 58, 59); omitted for INFORM and proxy replies. */
  leaseTimeSec?: number;
  hostname?: string;
  boot?: BootDecision;
  /** Only boot information (proxyDHCP): no subnet options. */
  bootOnly?: boolean;
  message?: string;
}

/** `f` memoised for up to `max` keys (then started afresh): configuration values, a handful in practice. */
function memo<K, V>(f: (k: K) => V, max = 256): (k: K) => V {
  const m = new Map<K, V>();
  return (k) => {
    let v = m.get(k);
    if (v === undefined) {
      if (m.size >= max) m.clear();
      v = f(k);
      m.set(k, v);
    }
    return v;
  };
}

const MESSAGE_TYPES = Array.from({ length: 9 }, (_, t) => Buffer.from([t]));
const ipOption = memo(encodeIp);
const textOption = memo((s: string) => Buffer.from(s));
const leaseTimes = memo((sec: number): [Buffer, Buffer, Buffer] => [encodeU32(sec), encodeU32(Math.floor(sec * 0.5)), encodeU32(Math.floor(sec * 0.875))]);
const PXE_VENDOR = pxeVendorOptions();

/** A subnet's options before the hostname (1, 3, 6, 15, 28) and its configured ones, encoded once per subnet object. */
const subnetOptions = new WeakMap<Subnet, { head: [number, Buffer][]; configured: [number, Buffer][] }>();
function optionsOf(s: Subnet): { head: [number, Buffer][]; configured: [number, Buffer][] } {
  let o = subnetOptions.get(s);
  if (!o) {
    const head: [number, Buffer][] = [[Opt.SUBNET_MASK, encodeIp(maskOf(s.cidr))]];
    if (s.gateway) head.push([Opt.ROUTER, encodeIp(s.gateway)]);
    if (s.dns.length) head.push([Opt.DNS, encodeIps(s.dns)]);
    if (s.domain) head.push([Opt.DOMAIN, Buffer.from(s.domain)]);
    head.push([Opt.BROADCAST, encodeIp(broadcastOf(s.cidr))]);
    const configured = Object.entries(s.options ?? {}).map(([code, value]): [number, Buffer] => [Number(code), encodeConfiguredOption(Number(code), value)]);
    o = { head, configured };
    subnetOptions.set(s, o);
  }
  return o;
}

export function buildReply(req: ClientRequest, spec: ReplySpec): DhcpPacket {
  const p = req.packet;
  const nak = spec.type === MessageType.NAK;
  const relayed = p.giaddr !== '0.0.0.0';
  const o = new Map<number, Buffer>();
  o.set(Opt.MESSAGE_TYPE, MESSAGE_TYPES[spec.type]!);
  o.set(Opt.SERVER_ID, ipOption(spec.serverId));
  const boot = !nak && spec.boot?.kind === 'boot' ? spec.boot : undefined;
  let file = '';
  let siaddr = '0.0.0.0';
  if (nak) {
    if (spec.message) o.set(Opt.MESSAGE, Buffer.from(spec.message.slice(0, 255)));
  } else {
    const s = spec.subnet;
    if (spec.leaseTimeSec !== undefined) {
      const [lease, t1, t2] = leaseTimes(spec.leaseTimeSec);
      o.set(Opt.LEASE_TIME, lease);
      o.set(Opt.T1, t1);
      o.set(Opt.T2, t2);
    }
    if (s && !spec.bootOnly) {
      const so = optionsOf(s);
      for (const [code, value] of so.head) o.set(code, value);
      if (spec.hostname) o.set(Opt.HOSTNAME, Buffer.from(spec.hostname));
      for (const [code, value] of so.configured) o.set(code, value);
      if (s.nextServer) siaddr = s.nextServer;
    }
    if (boot) {
      siaddr = boot.nextServer;
      if (Buffer.byteLength(boot.file) < 128) file = boot.file;
      if (boot.vendorClass) o.set(Opt.VENDOR_CLASS, textOption(boot.vendorClass));
      if (boot.pxeVendorOptions) o.set(Opt.VENDOR, PXE_VENDOR);
      if (!file || req.paramList.includes(Opt.BOOTFILE)) o.set(Opt.BOOTFILE, textOption(boot.file));
      if (req.paramList.includes(Opt.TFTP_SERVER) && boot.via === 'tftp') o.set(Opt.TFTP_SERVER, textOption(boot.nextServer));
      if (req.packet.options.has(Opt.CLIENT_UUID)) o.set(Opt.CLIENT_UUID, req.packet.options.get(Opt.CLIENT_UUID)!);
    }
  }
  // RFC 3046 2.2: echo option 82 unchanged, as the last option.
  if (req.relayAgentRaw) o.set(Opt.RELAY_AGENT, req.relayAgentRaw);
  return {
    op: BOOTREPLY,
    htype: p.htype,
    hlen: p.hlen,
    hops: 0,
    xid: p.xid,
    secs: 0,
    // A NAK through a relay must be broadcast by the relay (RFC 2131 4.3.2).
    flags: nak && relayed ? p.flags | FLAG_BROADCAST : p.flags,
    ciaddr: !nak && (spec.type === MessageType.ACK) ? p.ciaddr : '0.0.0.0',
    yiaddr: spec.yiaddr ?? '0.0.0.0',
    siaddr,
    giaddr: p.giaddr,
    chaddr: p.chaddr, // parsePacket's own copy; read-only like the options
    sname: '',
    file,
    options: o,
  };
}
