/**
 * Building server replies: header fields per RFC 2131 table 3, the subnet's options, PXE boot fields, and
 * echoes (option 82 unchanged and last, option 97 for PXE clients).
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

export function buildReply(req: ClientRequest, spec: ReplySpec): DhcpPacket {
  const p = req.packet;
  const nak = spec.type === MessageType.NAK;
  const relayed = p.giaddr !== '0.0.0.0';
  const o = new Map<number, Buffer>();
  o.set(Opt.MESSAGE_TYPE, Buffer.from([spec.type]));
  o.set(Opt.SERVER_ID, encodeIp(spec.serverId));
  const boot = !nak && spec.boot?.kind === 'boot' ? spec.boot : undefined;
  let file = '';
  let siaddr = '0.0.0.0';
  if (nak) {
    if (spec.message) o.set(Opt.MESSAGE, Buffer.from(spec.message.slice(0, 255)));
  } else {
    const s = spec.subnet;
    if (spec.leaseTimeSec !== undefined) {
      o.set(Opt.LEASE_TIME, encodeU32(spec.leaseTimeSec));
      o.set(Opt.T1, encodeU32(Math.floor(spec.leaseTimeSec * 0.5)));
      o.set(Opt.T2, encodeU32(Math.floor(spec.leaseTimeSec * 0.875)));
    }
    if (s && !spec.bootOnly) {
      o.set(Opt.SUBNET_MASK, encodeIp(maskOf(s.cidr)));
      if (s.gateway) o.set(Opt.ROUTER, encodeIp(s.gateway));
      if (s.dns.length) o.set(Opt.DNS, encodeIps(s.dns));
      if (s.domain) o.set(Opt.DOMAIN, Buffer.from(s.domain));
      o.set(Opt.BROADCAST, encodeIp(broadcastOf(s.cidr)));
      if (spec.hostname) o.set(Opt.HOSTNAME, Buffer.from(spec.hostname));
      for (const [code, value] of Object.entries(s.options ?? {})) o.set(Number(code), encodeConfiguredOption(Number(code), value));
      if (s.nextServer) siaddr = s.nextServer;
    }
    if (boot) {
      siaddr = boot.nextServer;
      if (Buffer.byteLength(boot.file) < 128) file = boot.file;
      if (boot.vendorClass) o.set(Opt.VENDOR_CLASS, Buffer.from(boot.vendorClass));
      if (boot.pxeVendorOptions) o.set(Opt.VENDOR, pxeVendorOptions());
      if (!file || req.paramList.includes(Opt.BOOTFILE)) o.set(Opt.BOOTFILE, Buffer.from(boot.file));
      if (req.paramList.includes(Opt.TFTP_SERVER) && boot.via === 'tftp') o.set(Opt.TFTP_SERVER, Buffer.from(boot.nextServer));
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
    chaddr: Buffer.from(p.chaddr),
    sname: '',
    file,
    options: o,
  };
}
