/**
 * TFTP packet codec (RFC 1350, RFC 2347 OACK). Pure functions over Buffers; no I/O.
 *
 * `parsePacket` never throws: it returns `{ ok: false, reason }` for anything malformed, so the
 * server can drop or answer it without a try/catch on the hot path.
 */

export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Error codes of RFC 1350 + RFC 2347. */
export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Longest filename/mode/option string we accept (tftpd-hpa and most firmware stay far below). */
export const MAX_STRING = 512;

export interface RequestPacket {
  op: typeof Opcode.RRQ | typeof Opcode.WRQ;
  filename: string;
  /** Lower-cased transfer mode as sent ("octet", "netascii", "mail", ...). */
  mode: string;
  /** Options by lower-cased name; the first occurrence of a name wins. */
  options: Map<string, string>;
}
export interface DataPacket {
  op: typeof Opcode.DATA;
  block: number;
  data: Buffer;
}
export interface AckPacket {
  op: typeof Opcode.ACK;
  block: number;
}
export interface ErrorPacket {
  op: typeof Opcode.ERROR;
  code: number;
  message: string;
}
export interface OackPacket {
  op: typeof Opcode.OACK;
  options: Map<string, string>;
}
export type Packet = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export type ParseResult = { ok: true; packet: Packet } | { ok: false; reason: string; opcode?: number };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Split `buf[start..]` into NUL-terminated strings. Returns null when the last string has no NUL. */
function splitStrings(buf: Buffer, start: number): string[] | null {
  const out: string[] = [];
  let i = start;
  while (i < buf.length) {
    const end = buf.indexOf(0, i);
    if (end === -1) return null;
    if (end - i > MAX_STRING) return null;
    out.push(utf8.decode(buf.subarray(i, end)));
    i = end + 1;
  }
  return out;
}

function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function parseOptions(fields: string[], from: number): Map<string, string> {
  const options = new Map<string, string>();
  // Pairs of name, value. Some PXE ROMs pad requests with extra NULs: an empty name ends the list,
  // and a dangling name without a value is ignored.
  for (let i = from; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toLowerCase();
    if (name === '') break;
    if (!options.has(name)) options.set(name, fields[i + 1]!);
  }
  return options;
}

export function parsePacket(buf: Buffer): ParseResult {
  if (buf.length < 2) return { ok: false, reason: 'packet shorter than an opcode' };
  const op = buf.readUInt16BE(0);
  try {
    switch (op) {
      case Opcode.RRQ:
      case Opcode.WRQ: {
        const fields = splitStrings(buf, 2);
        if (!fields) return { ok: false, reason: 'request strings not NUL-terminated or too long', opcode: op };
        if (fields.length < 2) return { ok: false, reason: 'request without filename and mode', opcode: op };
        const filename = fields[0]!;
        const mode = fields[1]!.toLowerCase();
        if (filename === '') return { ok: false, reason: 'empty filename', opcode: op };
        if (hasControlChars(filename)) return { ok: false, reason: 'control characters in filename', opcode: op };
        return { ok: true, packet: { op, filename, mode, options: parseOptions(fields, 2) } };
      }
      case Opcode.DATA:
        if (buf.length < 4) return { ok: false, reason: 'truncated DATA', opcode: op };
        return { ok: true, packet: { op, block: buf.readUInt16BE(2), data: buf.subarray(4) } };
      case Opcode.ACK:
        if (buf.length < 4) return { ok: false, reason: 'truncated ACK', opcode: op };
        return { ok: true, packet: { op, block: buf.readUInt16BE(2) } };
      case Opcode.ERROR: {
        if (buf.length < 4) return { ok: false, reason: 'truncated ERROR', opcode: op };
        const code = buf.readUInt16BE(2);
        // Be lenient with the message: a missing NUL or odd bytes must not hide the error code.
        let end = buf.indexOf(0, 4);
        if (end === -1) end = buf.length;
        const message = buf.toString('latin1', 4, Math.min(end, 4 + MAX_STRING));
        return { ok: true, packet: { op, code, message } };
      }
      case Opcode.OACK: {
        const fields = splitStrings(buf, 2);
        if (!fields) return { ok: false, reason: 'OACK strings not NUL-terminated', opcode: op };
        return { ok: true, packet: { op, options: parseOptions(fields, 0) } };
      }
      default:
        return { ok: false, reason: `unknown opcode ${op}`, opcode: op };
    }
  } catch {
    // TextDecoder fatal: invalid UTF-8.
    return { ok: false, reason: 'invalid UTF-8 in request', opcode: op };
  }
}

function encodeStrings(op: number, strings: string[]): Buffer {
  const parts = strings.map((s) => Buffer.from(s, 'utf8'));
  const len = 2 + parts.reduce((n, p) => n + p.length + 1, 0);
  const buf = Buffer.alloc(len);
  buf.writeUInt16BE(op, 0);
  let off = 2;
  for (const p of parts) {
    p.copy(buf, off);
    off += p.length + 1; // NUL already there (alloc zero-fills)
  }
  return buf;
}

export function encodeRequest(
  op: typeof Opcode.RRQ | typeof Opcode.WRQ,
  filename: string,
  mode = 'octet',
  options: Iterable<[string, string]> = [],
): Buffer {
  const strings = [filename, mode];
  for (const [k, v] of options) strings.push(k, v);
  return encodeStrings(op, strings);
}

export function encodeOack(options: Iterable<[string, string]>): Buffer {
  const strings: string[] = [];
  for (const [k, v] of options) strings.push(k, v);
  return encodeStrings(Opcode.OACK, strings);
}

/** A DATA packet: header + a copy of `data`. Block numbers are taken modulo 65536 (rollover). */
export function encodeData(block: number, data: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(4 + data.length);
  buf.writeUInt16BE(Opcode.DATA, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  buf.set(data, 4);
  return buf;
}

export function encodeAck(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(Opcode.ACK, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}

export function encodeError(code: number, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  const buf = Buffer.alloc(4 + msg.length + 1);
  buf.writeUInt16BE(Opcode.ERROR, 0);
  buf.writeUInt16BE(code, 2);
  msg.copy(buf, 4);
  return buf;
}
