/**
 * DHCP options (RFC 2132 and extensions): codes, typed decoders for the options the agent reads and encoders
 * for the options it writes. Option values travel as raw Buffers in `DhcpPacket.options` (repeated
 * instances of a code are concatenated per RFC 3396); the functions here give them meaning.
 */
import { intToIp, ipToInt, isIpv4 } from '../../shared/dhcp/ip.js';

export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN: 15,
  BROADCAST: 28,
  VENDOR: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAM_LIST: 55,
  MESSAGE: 56,
  MAX_SIZE: 57,
  T1: 58,
  T2: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77,
  RELAY_AGENT: 82,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  SUBNET_SELECTION: 118,
  IPXE: 175,
  END: 255,
} as const;

export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageTypeName = keyof typeof MessageType;
const MESSAGE_TYPE_NAMES: (MessageTypeName | undefined)[] = [];
for (const k of Object.keys(MessageType) as MessageTypeName[]) MESSAGE_TYPE_NAMES[MessageType[k]] = k;
export const messageTypeName = (n: number): MessageTypeName | undefined => MESSAGE_TYPE_NAMES[n];

/** Relay agent information (option 82) sub-options. */
export const RelaySub = { CIRCUIT_ID: 1, REMOTE_ID: 2, LINK_SELECTION: 5, SERVER_ID_OVERRIDE: 11 } as const;

/** Value types of options that may be configured as strings in `Subnet.options`. */
type OptType = 'ip' | 'ips' | 'u8' | 'u16' | 'u32' | 'text' | 'bool';
const OPTION_TYPES: Record<number, OptType> = {
  1: 'ip', 2: 'u32', 3: 'ips', 4: 'ips', 5: 'ips', 6: 'ips', 7: 'ips', 9: 'ips', 12: 'text', 13: 'u16', 15: 'text',
  16: 'ip', 17: 'text', 19: 'bool', 23: 'u8', 26: 'u16', 28: 'ip', 33: 'ips', 40: 'text', 41: 'ips', 42: 'ips',
  44: 'ips', 45: 'ips', 46: 'u8', 47: 'text', 51: 'u32', 58: 'u32', 59: 'u32', 64: 'text', 65: 'ips', 66: 'text',
  67: 'text', 69: 'ips', 70: 'ips', 72: 'ips', 100: 'text', 101: 'text', 119: 'text', 150: 'ips', 252: 'text',
};

/**
 * Encode a configured option value (a string) by the option's type: comma-separated addresses for address
 * lists, decimal numbers, `true`/`false`, text otherwise. For any code, a value `hex:0a0b…` gives raw bytes.
 */
export function encodeConfiguredOption(code: number, value: string): Buffer {
  if (value.startsWith('hex:')) {
    const hex = value.slice(4).replace(/[:\s]/g, '');
    if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error(`option ${code}: bad hex value`);
    return Buffer.from(hex, 'hex');
  }
  const type = OPTION_TYPES[code] ?? 'text';
  switch (type) {
    case 'ip':
    case 'ips': {
      const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
      if (parts.length === 0 || (type === 'ip' && parts.length !== 1)) throw new Error(`option ${code}: expected ${type === 'ip' ? 'one address' : 'addresses'}`);
      return encodeIps(parts);
    }
    case 'u8':
    case 'u16':
    case 'u32': {
      const n = Number(value);
      const max = type === 'u8' ? 0xff : type === 'u16' ? 0xffff : 0xffffffff;
      if (!/^\d+$/.test(value.trim()) || n > max) throw new Error(`option ${code}: expected an integer 0..${max}`);
      const b = Buffer.alloc(type === 'u8' ? 1 : type === 'u16' ? 2 : 4);
      if (type === 'u8') b.writeUInt8(n);
      else if (type === 'u16') b.writeUInt16BE(n);
      else b.writeUInt32BE(n);
      return b;
    }
    case 'bool':
      if (value !== 'true' && value !== 'false') throw new Error(`option ${code}: expected true or false`);
      return Buffer.from([value === 'true' ? 1 : 0]);
    case 'text':
      return Buffer.from(value, 'utf8');
  }
}

// ---- encoders -------------------------------------------------------------------------------------------

export function encodeIp(ip: string): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(ipToInt(ip));
  return b;
}

export function encodeIps(ips: string[]): Buffer {
  return Buffer.concat(ips.map(encodeIp));
}

export function encodeU32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function encodeU16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** Encapsulated sub-options (TLV list) as used by options 43, 82 and 175. */
export function encodeSubOptions(subs: Array<[number, Buffer]>, withEnd = false): Buffer {
  const parts: Buffer[] = [];
  for (const [code, val] of subs) {
    if (val.length > 255) throw new Error(`sub-option ${code} longer than 255 bytes`);
    parts.push(Buffer.from([code, val.length]), val);
  }
  if (withEnd) parts.push(Buffer.from([255]));
  return Buffer.concat(parts);
}

/** Option 43 for PXE clients: sub-option 6 (PXE_DISCOVERY_CONTROL) = 8, boot the file named in the packet. */
export function pxeVendorOptions(): Buffer {
  return encodeSubOptions([[6, Buffer.from([8])]], true);
}

/** Option 77 in RFC 3004 form (length-prefixed classes). */
export function encodeUserClassRfc3004(classes: string[]): Buffer {
  return Buffer.concat(classes.map((c) => Buffer.concat([Buffer.from([Buffer.byteLength(c)]), Buffer.from(c)])));
}

// ---- decoders -------------------------------------------------------------------------------------------

export class OptionDecodeError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(`option ${code}: ${message}`);
    this.name = 'OptionDecodeError';
  }
}

export function decodeIp(code: number, b: Buffer): string {
  if (b.length !== 4) throw new OptionDecodeError(code, `expected 4 bytes, got ${b.length}`);
  return intToIp(b.readUInt32BE(0));
}

export function decodeIps(code: number, b: Buffer): string[] {
  if (b.length === 0 || b.length % 4 !== 0) throw new OptionDecodeError(code, `expected a multiple of 4 bytes, got ${b.length}`);
  const out: string[] = [];
  for (let i = 0; i < b.length; i += 4) out.push(intToIp(b.readUInt32BE(i)));
  return out;
}

export function decodeU32(code: number, b: Buffer): number {
  if (b.length !== 4) throw new OptionDecodeError(code, `expected 4 bytes, got ${b.length}`);
  return b.readUInt32BE(0);
}

export function decodeU16(code: number, b: Buffer): number {
  if (b.length !== 2) throw new OptionDecodeError(code, `expected 2 bytes, got ${b.length}`);
  return b.readUInt16BE(0);
}

/** Text options: trailing NULs dropped (some clients NUL-terminate). */
export function decodeText(b: Buffer): string {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.toString('utf8', 0, end);
}

/** TLV sub-options (options 43, 82, 175). Throws when a length runs beyond the value. Stops at 255 (end). */
export function decodeSubOptions(code: number, b: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let i = 0;
  while (i < b.length) {
    const sub = b[i]!;
    if (sub === 0) {
      i++;
      continue;
    }
    if (sub === 255) break;
    if (i + 2 > b.length) throw new OptionDecodeError(code, 'truncated sub-option');
    const len = b[i + 1]!;
    if (i + 2 + len > b.length) throw new OptionDecodeError(code, `sub-option ${sub} length ${len} beyond the option`);
    const prev = out.get(sub);
    const val = b.subarray(i + 2, i + 2 + len);
    out.set(sub, prev ? Buffer.concat([prev, val]) : Buffer.from(val));
    i += 2 + len;
  }
  return out;
}

/**
 * Option 77 (user class). RFC 3004 encodes a list of length-prefixed classes; iPXE and many firmwares send
 * the bare string (`iPXE`). A value that parses exactly as RFC 3004 with printable classes is read that way,
 * anything else is one plain class.
 */
export function decodeUserClass(b: Buffer): string[] {
  const classes: string[] = [];
  let i = 0;
  let rfc3004 = b.length > 0;
  while (rfc3004 && i < b.length) {
    const len = b[i]!;
    if (len === 0 || i + 1 + len > b.length) {
      rfc3004 = false;
      break;
    }
    const s = b.subarray(i + 1, i + 1 + len);
    if (!s.every((c) => c >= 0x20 && c < 0x7f)) {
      rfc3004 = false;
      break;
    }
    classes.push(s.toString('latin1'));
    i += 1 + len;
  }
  if (rfc3004) return classes;
  const plain = decodeText(b);
  return plain ? [plain] : [];
}

/** Option 93: list of 16-bit architecture types (RFC 4578). */
export function decodeClientArch(b: Buffer): number[] {
  if (b.length === 0 || b.length % 2 !== 0) throw new OptionDecodeError(93, `expected a multiple of 2 bytes, got ${b.length}`);
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 2) out.push(b.readUInt16BE(i));
  return out;
}

export interface ClientNdi {
  type: number;
  major: number;
  minor: number;
}

/** Option 94: network device interface (type 1 = UNDI, major, minor). */
export function decodeClientNdi(b: Buffer): ClientNdi {
  if (b.length !== 3) throw new OptionDecodeError(94, `expected 3 bytes, got ${b.length}`);
  return { type: b[0]!, major: b[1]!, minor: b[2]! };
}

/**
 * Option 97: client machine identifier, type 0 followed by a 16-byte UUID/GUID. Length 0 is allowed (some
 * firmware). Returned as the canonical textual form of the bytes as sent.
 */
export function decodeClientUuid(b: Buffer): string | '' {
  if (b.length === 0) return '';
  if (b.length !== 17 || b[0] !== 0) throw new OptionDecodeError(97, `expected type 0 and 16 bytes, got ${b.length} bytes`);
  const h = b.subarray(1).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export interface RelayAgentInfo {
  circuitId?: Buffer;
  remoteId?: Buffer;
  linkSelection?: string;
  serverIdOverride?: string;
  /** Every sub-option, raw. */
  subs: Map<number, Buffer>;
}

export function decodeRelayAgent(b: Buffer): RelayAgentInfo {
  const subs = decodeSubOptions(82, b);
  const info: RelayAgentInfo = { subs };
  if (subs.has(RelaySub.CIRCUIT_ID)) info.circuitId = subs.get(RelaySub.CIRCUIT_ID)!;
  if (subs.has(RelaySub.REMOTE_ID)) info.remoteId = subs.get(RelaySub.REMOTE_ID)!;
  if (subs.has(RelaySub.LINK_SELECTION)) info.linkSelection = decodeIp(82, subs.get(RelaySub.LINK_SELECTION)!);
  if (subs.has(RelaySub.SERVER_ID_OVERRIDE)) info.serverIdOverride = decodeIp(82, subs.get(RelaySub.SERVER_ID_OVERRIDE)!);
  return info;
}

/** Option 52 value: 1 = `file` holds options, 2 = `sname` holds options, 3 = both. */
export function decodeOverload(b: Buffer): 1 | 2 | 3 {
  if (b.length !== 1 || b[0]! < 1 || b[0]! > 3) throw new OptionDecodeError(52, 'expected one byte 1..3');
  return b[0] as 1 | 2 | 3;
}

export { isIpv4 };
