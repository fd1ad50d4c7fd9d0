/**
 * Where a server reply goes (RFC 2131 4.1):
 * - giaddr set: unicast to the relay, port 67 (server port);
 * - a NAK otherwise: broadcast;
 * - ciaddr set: unicast to ciaddr, port 68;
 * - otherwise broadcast 255.255.255.255:68. (Unicasting to yiaddr before the client has the address needs
 *   an ARP entry injected by hand, which node:dgram cannot do; every client accepts the broadcast.)
 */
import type { DhcpPacket } from './packet.js';

export interface ReplyDestination {
  address: string;
  port: number;
  broadcast: boolean;
}

export interface Ports {
  server: number;
  client: number;
}

export function replyDestination(req: Pick<DhcpPacket, 'giaddr' | 'ciaddr'>, isNak: boolean, ports: Ports): ReplyDestination {
  if (req.giaddr !== '0.0.0.0') return { address: req.giaddr, port: ports.server, broadcast: false };
  if (!isNak && req.ciaddr !== '0.0.0.0') return { address: req.ciaddr, port: ports.client, broadcast: false };
  return { address: '255.255.255.255', port: ports.client, broadcast: true };
}
