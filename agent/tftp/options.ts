/**
 * Option negotiation for read requests: RFC 2347 (OACK), 2348 (blksize), 2349 (timeout, tsize),
 * 7440 (windowsize). Pure: given the client's options and the server's limits, returns what the
 * transfer will use and the OACK to send (or null when no option was accepted: plain RFC 1350).
 *
 * Values that are not plain decimal integers, or outside the RFC's range, make us decline that option
 * (omit it from the OACK), which RFC 2347 allows; the transfer then proceeds with the default.
 */

export const BLKSIZE_MIN = 8;
export const BLKSIZE_MAX = 65464;
export const DEFAULT_BLKSIZE = 512;
export const WINDOWSIZE_MAX = 65535;

export interface NegotiationLimits {
  /** Largest blksize we agree to (client asks for more: we answer this). */
  maxBlksize: number;
  /** Largest windowsize we agree to. */
  maxWindowsize: number;
  /** Retransmission timeout when the client does not ask for one. */
  defaultTimeoutMs: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Options to put in the OACK, in the order the client sent them; null = no OACK. */
  oack: [string, string][] | null;
}

function parseUint(v: string, max: number): number | null {
  if (!/^[0-9]{1,10}$/.test(v)) return null;
  const n = Number(v);
  return n <= max ? n : null;
}

export function negotiate(requested: ReadonlyMap<string, string>, fileSize: number, limits: NegotiationLimits): Negotiated {
  const out: Negotiated = { blksize: DEFAULT_BLKSIZE, windowsize: 1, timeoutMs: limits.defaultTimeoutMs, oack: null };
  const oack: [string, string][] = [];
  for (const [name, value] of requested) {
    switch (name) {
      case 'blksize': {
        // Values above the RFC maximum are clamped like any other over-large value (RFC 2348 lets the
        // server answer a smaller size); values below 8 are declined.
        const n = parseUint(value, Number.MAX_SAFE_INTEGER);
        if (n === null || n < BLKSIZE_MIN) break;
        out.blksize = Math.min(n, limits.maxBlksize, BLKSIZE_MAX);
        oack.push([name, String(out.blksize)]);
        break;
      }
      case 'tsize': {
        // On an RRQ the client sends 0; we answer the size. Any integer is accepted.
        if (parseUint(value, Number.MAX_SAFE_INTEGER) === null) break;
        oack.push([name, String(fileSize)]);
        break;
      }
      case 'timeout': {
        // RFC 2349: 1..255 seconds; the server must either accept the value as is or decline it.
        const n = parseUint(value, 255);
        if (n === null || n < 1) break;
        out.timeoutMs = n * 1000;
        oack.push([name, String(n)]);
        break;
      }
      case 'windowsize': {
        const n = parseUint(value, Number.MAX_SAFE_INTEGER);
        if (n === null || n < 1) break;
        out.windowsize = Math.min(n, limits.maxWindowsize, WINDOWSIZE_MAX);
        oack.push([name, String(out.windowsize)]);
        break;
      }
      default:
        // Unknown options (multicast, utimeout, rollover, ...) are declined by omission.
        break;
    }
  }
  if (oack.length > 0) out.oack = oack;
  return out;
}
