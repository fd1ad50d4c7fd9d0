/**
 * BOOTP/DHCP packet codec (RFC 951, RFC 2131, RFC 3396 long options, RFC 2132 option overload).
 * `parsePacket` never throws anything but `DhcpParseError`; it checks every length against the buffer.
 */
import { intToIp, ipToInt } from '../../shared/dhcp/ip.js';
import { decodeOverload, Opt, OptionDecodeError } from './options.js';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const MAGIC_COOKIE = 0x63825363;
export const HEADER_SIZE = 236;
/** Header + cookie: the smallest packet that can carry options. */
export const MIN_PACKET_SIZE = HEADER_SIZE + 4;
/** Larger datagrams are rejected: DHCP over Ethernet stays below 1500; relays and jumbo frames get headroom. */
export const MAX_PACKET_SIZE = 4096;
/** BOOTP clients and some firmware drop replies shorter than this (RFC 951 300-byte BOOTP message). */
export const MIN_REPLY_SIZE = 300;

export type DhcpParseErrorCode =
  | 'truncated'
  | 'oversize'
  | 'bad_op'
  | 'bad_hlen'
  | 'bad_cookie'
  | 'option_overrun'
  | 'missing_end'
  | 'overload_loop'
  | 'bad_option';

export class DhcpParseError extends Error {
  constructor(
    readonly code: DhcpParseErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DhcpParseError';
  }
}

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** 16 bytes; the first `hlen` are the hardware address. */
  chaddr: Buffer;
  sname: string;
  file: string;
  /**
   * Options by code, in the order first seen. Repeated instances of a code are concatenated (RFC 3396).
   * Pad, end and overload (52) are codec concerns and never appear here.
   */
  options: Map<number, Buffer>;
}

export const FLAG_BROADCAST = 0x8000;

/** Hardware address as `aa:bb:cc:dd:ee:ff` (hlen bytes of chaddr, lower case). */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

export function macOf(p: Pick<DhcpPacket, 'chaddr' | 'hlen'>): string {
  const n = Math.min(p.hlen, 16);
  let s = '';
  for (let i = 0; i < n; i++) s += i === 0 ? HEX[p.chaddr[i]!] : ':' + HEX[p.chaddr[i]!];
  return s;
}

export function macToChaddr(mac: string): Buffer {
  const b = Buffer.alloc(16);
  Buffer.from(mac.replace(/[:-]/g, ''), 'hex').copy(b);
  return b;
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString('latin1', 0, nul === -1 ? buf.length : nul);
}

/**
 * Walk an options area. `requireEnd`: the main area must end with option 255; the overloaded sname/file
 * fields are fixed-size and may simply run out. `allowOverload`: option 52 inside sname/file is a loop.
 */
function readOptions(
  buf: Buffer,
  start: number,
  end: number,
  into: Map<number, Buffer>,
  where: string,
  requireEnd: boolean,
  allowOverload: boolean,
): void {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === Opt.PAD) {
      i += 1;
      continue;
    }
    if (code === Opt.END) return;
    if (i + 1 >= end) throw new DhcpParseError('option_overrun', `option ${code} in ${where}: no length byte`);
    const len = buf[i + 1]!;
    if (i + 2 + len > end) throw new DhcpParseError('option_overrun', `option ${code} in ${where}: length ${len} runs beyond the ${where} area`);
    if (code === Opt.OVERLOAD && !allowOverload) throw new DhcpParseError('overload_loop', `option 52 (overload) inside the ${where} field`);
    // A view into the datagram (each datagram has its own buffer): no copy, unless the code repeats
    // (RFC 3396: instances are concatenated, in order; rare).
    const val = buf.subarray(i + 2, i + 2 + len);
    const prev = into.get(code);
    into.set(code, prev ? Buffer.concat([prev, val]) : val);
    i += 2 + len;
  }
  if (requireEnd) throw new DhcpParseError('missing_end', `${where}: no end option (255)`);
}

export function parsePacket(buf: Buffer): DhcpPacket {
  if (buf.length < MIN_PACKET_SIZE) throw new DhcpParseError('truncated', `packet of ${buf.length} bytes is shorter than ${MIN_PACKET_SIZE}`);
  if (buf.length > MAX_PACKET_SIZE) throw new DhcpParseError('oversize', `packet of ${buf.length} bytes exceeds ${MAX_PACKET_SIZE}`);
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new DhcpParseError('bad_op', `op ${op} is neither request nor reply`);
  const hlen = buf[2]!;
  if (hlen > 16) throw new DhcpParseError('bad_hlen', `hlen ${hlen} > 16`);
  const cookie = buf.readUInt32BE(HEADER_SIZE);
  if (cookie !== MAGIC_COOKIE) throw new DhcpParseError('bad_cookie', `magic cookie 0x${cookie.toString(16)} is not 0x63825363`);

  const options = new Map<number, Buffer>();
  readOptions(buf, MIN_PACKET_SIZE, buf.length, options, 'options', true, true);
  const snameField = buf.subarray(44, 108);
  const fileField = buf.subarray(108, 236);
  let sname = cString(snameField);
  let file = cString(fileField);
  const ovl = options.get(Opt.OVERLOAD);
  if (ovl) {
    let overload: 1 | 2 | 3;
    try {
      overload = decodeOverload(ovl);
    } catch (e) {
      throw new DhcpParseError('bad_option', (e as Error).message);
    }
    options.delete(Opt.OVERLOAD);
    // RFC 2131 4.1: options, then file, then sname.
    if (overload & 1) {
      readOptions(buf, 108, 236, options, 'file', false, false);
      file = '';
    }
    if (overload & 2) {
      readOptions(buf, 44, 108, options, 'sname', false, false);
      sname = '';
    }
  }
  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: intToIp(buf.readUInt32BE(12)),
    yiaddr: intToIp(buf.readUInt32BE(16)),
    siaddr: intToIp(buf.readUInt32BE(20)),
    giaddr: intToIp(buf.readUInt32BE(24)),
    chaddr: Buffer.from(buf.subarray(28, 44)),
    sname,
    file,
    options,
  };
}

function writeCString(buf: Buffer, at: number, size: number, s: string, field: string): void {
  if (s === '') return; // the buffer is zero-filled
  if (Buffer.byteLength(s, 'latin1') > size) throw new Error(`${field} longer than ${size} bytes`);
  buf.write(s, at, size, 'latin1');
}

/**
 * Serialize. Options are written in map order except that 53 (message type) goes first; values longer than
 * 255 bytes are split into consecutive instances (RFC 3396). The result is padded to `minSize`.
 * One allocation: the size is computed first, then header and options are written in place.
 */
export function serializePacket(p: DhcpPacket, minSize = MIN_REPLY_SIZE): Buffer {
  const out = Buffer.alloc(Math.min(serializedSize(p, minSize), MAX_PACKET_SIZE + 1));
  serializePacketInto(p, out, 0, minSize);
  return out;
}

function serializedSize(p: DhcpPacket, minSize: number): number {
  let size = MIN_PACKET_SIZE + 1;
  for (const val of p.options.values()) {
    const len = val.length;
    size += len === 0 ? 2 : len + 2 * Math.ceil(len / 255);
  }
  return Math.max(size, minSize);
}

/**
 * `serializePacket` written into `out` at `at` (the bytes it covers are zeroed first: `out` may be a reused
 * send buffer); returns the packet's length. Throws, having written nothing that counts, when the packet
 * exceeds MAX_PACKET_SIZE or the room left in `out`.
 */
export function serializePacketInto(p: DhcpPacket, out: Buffer, at: number, minSize = MIN_REPLY_SIZE): number {
  const size = serializedSize(p, minSize);
  if (size > MAX_PACKET_SIZE) throw new Error(`packet of ${size} bytes exceeds ${MAX_PACKET_SIZE}`);
  if (at + size > out.length) throw new RangeError(`packet of ${size} bytes does not fit in ${out.length - at}`);
  const o = at;
  out.fill(0, o, o + size);
  out[o] = p.op;
  out[o + 1] = p.htype;
  out[o + 2] = p.hlen;
  out[o + 3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, o + 4);
  out.writeUInt16BE(p.secs, o + 8);
  out.writeUInt16BE(p.flags, o + 10);
  out.writeUInt32BE(ipToInt(p.ciaddr), o + 12);
  out.writeUInt32BE(ipToInt(p.yiaddr), o + 16);
  out.writeUInt32BE(ipToInt(p.siaddr), o + 20);
  out.writeUInt32BE(ipToInt(p.giaddr), o + 24);
  p.chaddr.copy(out, o + 28, 0, 16);
  writeCString(out, o + 44, 64, p.sname, 'sname');
  writeCString(out, o + 108, 128, p.file, 'file');
  out.writeUInt32BE(MAGIC_COOKIE, o + HEADER_SIZE);
  let w = o + MIN_PACKET_SIZE;
  const mt = p.options.get(Opt.MESSAGE_TYPE);
  if (mt) w = writeOption(out, w, Opt.MESSAGE_TYPE, mt);
  for (const [code, val] of p.options) {
    if (code === Opt.MESSAGE_TYPE) continue;
    if (code === Opt.PAD || code === Opt.END || code === Opt.OVERLOAD || code > 255 || code < 0) throw new Error(`option code ${code} cannot be set directly`);
    w = writeOption(out, w, code, val);
  }
  out[w] = Opt.END;
  return size;
}

/** Writes one option (split into 255-byte instances, RFC 3396) at `at`; returns where the next one goes. */
function writeOption(out: Buffer, at: number, code: number, val: Buffer): number {
  if (val.length === 0) {
    out[at++] = code;
    out[at++] = 0;
    return at;
  }
  for (let i = 0; i < val.length; i += 255) {
    const n = Math.min(255, val.length - i);
    out[at++] = code;
    out[at++] = n;
    if (n === 1) out[at] = val[i]!;
    else val.copy(out, at, i, i + n);
    at += n;
  }
  return at;
}

/** An empty request/reply skeleton (tests and crafted clients). */
export function emptyPacket(op: number, mac: string, xid: number): DhcpPacket {
  return {
    op,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: macToChaddr(mac),
    sname: '',
    file: '',
    options: new Map(),
  };
}

export { OptionDecodeError };
