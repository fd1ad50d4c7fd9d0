import { createSocket, type RemoteInfo } from 'node:dgram';
import { encodeAck, encodeError, encodeRequest, ErrorCode, Opcode, parsePacket } from '../../agent/tftp/packet.js';

/**
 * A minimal TFTP read client (RFC 1350 + options + windowsize + rollover) for the TFTP tests and the
 * benchmarks (scripts/bench/tftp, scripts/bench/boot). Not part of the agent: it lives here so that no
 * test tool ships in the agent (docs/decisions.md, "The TFTP client is a bench tool").
 */
export interface TftpGetOptions {
  host: string;
  port: number;
  file: string;
  mode?: 'octet' | 'netascii';
  /** Options to request, e.g. { blksize: 1468, tsize: 0, windowsize: 8 }. */
  options?: Record<string, string | number>;
  /** Receive timeout before re-sending the last ACK (or the RRQ). */
  timeoutMs?: number;
  retries?: number;
  /** Double the timeout after each resend, up to this many ms (firmware backoff); progress resets it. */
  backoffMaxMs?: number;
  /** Receive data here instead of collecting it (the result's `data` is then empty). */
  onData?: (chunk: Buffer) => void;
  /** Stop right after the OACK with this error code (emulates UEFI's size probe). */
  abortAfterOack?: { code: number; message: string };
}

export interface TftpGetResult {
  data: Buffer;
  bytes: number;
  /** The server's OACK options, or null when it answered with DATA directly. */
  oack: Record<string, string> | null;
  blocks: number;
}

export class TftpClientError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

export function tftpGet(o: TftpGetOptions): Promise<TftpGetResult> {
  const timeoutMs = o.timeoutMs ?? 1000;
  const retries = o.retries ?? 5;
  const sock = createSocket('udp4');
  const opts = Object.entries(o.options ?? {}).map(([k, v]) => [k, String(v)] as [string, string]);
  const rrq = encodeRequest(Opcode.RRQ, o.file, o.mode ?? 'octet', opts);
  let blksize = 512;
  let windowsize = 1;
  let oack: Record<string, string> | null = null;
  let peer: RemoteInfo | undefined;
  let expected = 1; // absolute number of the next block
  let inWindow = 0;
  let gapAcked = false;
  let bytes = 0;
  const chunks: Buffer[] = [];
  let lastSent: Buffer = rrq;
  let tries = 0;
  let timer: NodeJS.Timeout | undefined;

  return new Promise<TftpGetResult>((resolve, reject) => {
    let closed = false;
    const done = (err: Error | null) => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      // Close once the last datagram (final ACK, abort ERROR) has left: a send still queued when the
      // socket closes is dropped.
      if (outstanding === 0) sock.close();
      if (err) reject(err);
      else resolve({ data: Buffer.concat(chunks), bytes, oack, blocks: expected - 1 });
    };
    let outstanding = 0;
    const sent = () => {
      if (--outstanding === 0 && closed) sock.close();
    };
    const send = (b: Buffer) => {
      lastSent = b;
      outstanding++;
      if (peer) sock.send(b, peer.port, peer.address, sent);
      else sock.send(b, o.port, o.host, sent);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (++tries > retries) return done(new TftpClientError('timeout'));
        send(lastSent);
        arm();
      }, o.backoffMaxMs ? Math.min(o.backoffMaxMs, timeoutMs * 2 ** tries) : timeoutMs);
    };
    sock.on('error', (e) => done(e));
    sock.on('message', (msg, rinfo) => {
      if (!peer) {
        if (rinfo.address !== o.host) return;
        peer = rinfo;
      } else if (rinfo.port !== peer.port || rinfo.address !== peer.address) {
        outstanding++;
        sock.send(encodeError(ErrorCode.UNKNOWN_TID, 'Unknown transfer ID'), rinfo.port, rinfo.address, sent);
        return;
      }
      const r = parsePacket(msg);
      if (!r.ok) return;
      const p = r.packet;
      if (p.op === Opcode.ERROR) return done(new TftpClientError(`server error ${p.code}: ${p.message}`, p.code));
      if (p.op === Opcode.OACK && expected === 1 && !oack) {
        oack = Object.fromEntries(p.options);
        if (oack.blksize) blksize = Number(oack.blksize);
        if (oack.windowsize) windowsize = Number(oack.windowsize);
        if (o.abortAfterOack) {
          send(encodeError(o.abortAfterOack.code, o.abortAfterOack.message));
          return done(null);
        }
        tries = 0;
        send(encodeAck(0));
        arm();
        return;
      }
      if (p.op !== Opcode.DATA) return;
      if (p.block !== (expected & 0xffff)) {
        // Out of order or a repeat: ack what we have (RFC 7440), which also restarts the window.
        const ahead = ((p.block - (expected & 0xffff)) & 0xffff) < 0x8000;
        if (ahead) {
          if (!gapAcked) send(encodeAck(expected - 1));
          gapAcked = true;
          inWindow = 0;
        } else if (p.block === ((expected - 1) & 0xffff)) {
          send(encodeAck(expected - 1)); // our ACK was lost and the server resent: ACK again
        }
        return;
      }
      gapAcked = false;
      if (o.onData) o.onData(p.data);
      else chunks.push(Buffer.from(p.data));
      bytes += p.data.length;
      expected++;
      inWindow++;
      tries = 0;
      const last = p.data.length < blksize;
      if (last || inWindow >= windowsize) {
        inWindow = 0;
        send(encodeAck(expected - 1));
      }
      if (last) return done(null);
      arm();
    });
    sock.bind(0, () => {
      send(rrq);
      arm();
    });
  });
}
