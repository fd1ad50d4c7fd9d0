/**
 * The decoded meaning of a client's DHCP request: every option the server acts on, validated. A malformed
 * option value becomes a `DhcpParseError('bad_option')`, so the server treats it like any malformed packet.
 */
import { DhcpParseError, macOf, type DhcpPacket } from './packet.js';
import {
  decodeClientArch,
  decodeClientNdi,
  decodeClientUuid,
  decodeIp,
  decodeRelayAgent,
  decodeSubOptions,
  decodeText,
  decodeU16,
  decodeUserClass,
  Opt,
  type ClientNdi,
  type RelayAgentInfo,
} from './options.js';

export interface ClientRequest {
  packet: DhcpPacket;
  mac: string;
  messageType?: number;
  requestedIp?: string;
  serverId?: string;
  paramList: number[];
  maxSize?: number;
  vendorClass?: string;
  clientId?: Buffer;
  hostname?: string;
  userClass: string[];
  clientArch?: number[];
  clientNdi?: ClientNdi;
  /** '' when option 97 was sent with length 0. */
  clientUuid?: string;
  relayAgent?: RelayAgentInfo;
  /** Raw option 82, echoed back unchanged. */
  relayAgentRaw?: Buffer;
  subnetSelection?: string;
  ipxe?: Map<number, Buffer>;
}

export function decodeRequest(packet: DhcpPacket): ClientRequest {
  const o = packet.options;
  try {
    const r: ClientRequest = { packet, mac: macOf(packet), paramList: [], userClass: [] };
    const mt = o.get(Opt.MESSAGE_TYPE);
    if (mt) {
      if (mt.length !== 1) throw new Error(`option 53: expected 1 byte, got ${mt.length}`);
      r.messageType = mt[0]!;
    }
    if (o.has(Opt.REQUESTED_IP)) r.requestedIp = decodeIp(50, o.get(Opt.REQUESTED_IP)!);
    if (o.has(Opt.SERVER_ID)) r.serverId = decodeIp(54, o.get(Opt.SERVER_ID)!);
    if (o.has(Opt.PARAM_LIST)) r.paramList = [...o.get(Opt.PARAM_LIST)!];
    if (o.has(Opt.MAX_SIZE)) r.maxSize = decodeU16(57, o.get(Opt.MAX_SIZE)!);
    if (o.has(Opt.VENDOR_CLASS)) r.vendorClass = decodeText(o.get(Opt.VENDOR_CLASS)!);
    if (o.has(Opt.CLIENT_ID)) r.clientId = o.get(Opt.CLIENT_ID)!;
    if (o.has(Opt.HOSTNAME)) r.hostname = decodeText(o.get(Opt.HOSTNAME)!);
    if (o.has(Opt.USER_CLASS)) r.userClass = decodeUserClass(o.get(Opt.USER_CLASS)!);
    if (o.has(Opt.CLIENT_ARCH)) r.clientArch = decodeClientArch(o.get(Opt.CLIENT_ARCH)!);
    if (o.has(Opt.CLIENT_NDI)) r.clientNdi = decodeClientNdi(o.get(Opt.CLIENT_NDI)!);
    if (o.has(Opt.CLIENT_UUID)) r.clientUuid = decodeClientUuid(o.get(Opt.CLIENT_UUID)!);
    if (o.has(Opt.RELAY_AGENT)) {
      r.relayAgentRaw = o.get(Opt.RELAY_AGENT)!;
      r.relayAgent = decodeRelayAgent(r.relayAgentRaw);
    }
    if (o.has(Opt.SUBNET_SELECTION)) r.subnetSelection = decodeIp(118, o.get(Opt.SUBNET_SELECTION)!);
    if (o.has(Opt.IPXE)) r.ipxe = decodeSubOptions(175, o.get(Opt.IPXE)!);
    return r;
  } catch (e) {
    throw new DhcpParseError('bad_option', (e as Error).message);
  }
}

/** A netboot client: option 60 starts with PXEClient or HTTPClient, or iPXE says so in option 77. */
export function isNetbootClient(r: Pick<ClientRequest, 'vendorClass' | 'userClass'>): boolean {
  return /^(PXEClient|HTTPClient)/.test(r.vendorClass ?? '') || r.userClass.includes('iPXE');
}
