/**
 * The DHCP server's UDP sockets, two ways behind one interface:
 *
 * - native (agent/tftp/native/dhcp_io.c, in the agent's addon): recvmmsg of up to RECV_SLOTS datagrams per
 *   readable event and one JS call per batch; replies queued and sent with one sendmmsg per loop turn.
 * - js (node:dgram): one event per datagram received, one send per reply. Used when the addon is missing
 *   (not built, or built before dhcp_io.c) or when asked for (`io: 'js'`).
 *
 * Both hand the server the same thing: a Buffer of its own per datagram (the handler keeps views into it
 * across awaits), the source address and port. Nothing is parsed here. A datagram longer than a slot is cut
 * at SLOT_SIZE = MAX_PACKET_SIZE + 1 bytes, so the parser refuses it as oversize exactly as it refuses the
 * whole datagram dgram delivers.
 */
import { createSocket, type Socket } from 'node:dgram';
import { constants as osConstants } from 'node:os';
import { nativeAddon, type AddonLoad } from '../tftp/native-data-path.js';
import { MAX_PACKET_SIZE, serializePacket, serializePacketInto, type DhcpPacket } from './packet.js';

export type DhcpIo = 'auto' | 'js';

export interface UdpSocketOptions {
  address: string;
  port: number;
  broadcast: boolean;
  recvBufferSize: number;
  onDatagram: (buf: Buffer, fromAddress: string, fromPort: number) => void;
  /** A receive or send error (the socket stays open). */
  onError: (err: Error) => void;
}

export interface DhcpSocket {
  readonly kind: 'native' | 'js';
  /**
   * Queues a datagram: bytes as they are, or a packet serialized here (the native socket writes it straight
   * into its send buffer: no Buffer per reply). Throws when a packet cannot be serialized; nothing is sent.
   */
  send(datagram: Buffer | DhcpPacket, port: number, address: string): void;
  close(): Promise<void>;
}

interface DhcpIoAddon {
  udpOpen(o: { address: string; port: number; broadcast: number; recvBufferSize: number; slots: number; slotSize: number }, recvBuffer: Buffer, recvMeta: Uint32Array, onBatch: (n: number) => void): object;
  udpSend(handle: object, sendBuffer: Buffer, sendMeta: Uint32Array, count: number): number;
  udpClose(handle: object): void;
}

/** Datagrams read per readable event (libuv's dgram reads 32 per socket per loop turn too). */
export const RECV_SLOTS = 32;
export const SLOT_SIZE = MAX_PACKET_SIZE + 1;
/** Replies queued before a send is forced (else they go once per loop turn). */
const SEND_SLOTS = 64;

/** Sockets resolve the destination of a reply synchronously: it is always an address, never a name. */
const literalLookup = (address: string, _o: unknown, cb: (err: Error | null, address: string, family: number) => void) => cb(null, address, 4);

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));
const errno = (n: number, what: string) => {
  const code = errnoNames.get(n) ?? `errno ${n}`;
  return Object.assign(new Error(`${what}: ${code}`), { errno: n, code });
};

function ipToU32(a: string): number {
  let v = 0;
  let part = 0;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c === 46) {
      v = v * 256 + part;
      part = 0;
    } else part = part * 10 + (c - 48);
  }
  return v * 256 + part;
}

const u32ToIp = (v: number) => `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;

class NativeUdpSocket implements DhcpSocket {
  readonly kind = 'native';
  private readonly handle: object;
  private readonly rbuf = Buffer.allocUnsafeSlow(RECV_SLOTS * SLOT_SIZE);
  private readonly rmeta = new Uint32Array(RECV_SLOTS * 4);
  private readonly sbuf = Buffer.allocUnsafeSlow(SEND_SLOTS * MAX_PACKET_SIZE);
  private readonly smeta = new Uint32Array(SEND_SLOTS * 4);
  private queued = 0;
  private queuedBytes = 0;
  private flushScheduled = false;
  private closed = false;

  constructor(
    private readonly addon: DhcpIoAddon,
    private readonly o: UdpSocketOptions,
  ) {
    this.handle = addon.udpOpen(
      { address: o.address, port: o.port, broadcast: o.broadcast ? 1 : 0, recvBufferSize: o.recvBufferSize, slots: RECV_SLOTS, slotSize: SLOT_SIZE },
      this.rbuf,
      this.rmeta,
      this.onBatch,
    );
  }

  private readonly onBatch = (n: number): void => {
    if (n < 0) {
      this.o.onError(errno(-n, 'recvmmsg'));
      return;
    }
    const { rbuf, rmeta } = this;
    for (let i = 0; i < n; i++) {
      const len = rmeta[i * 4]!;
      const off = i * SLOT_SIZE;
      // A Buffer of its own (the receive buffer is read into again on the next event).
      const buf = Buffer.allocUnsafe(len);
      rbuf.copy(buf, 0, off, off + len);
      this.o.onDatagram(buf, u32ToIp(rmeta[i * 4 + 1]!), rmeta[i * 4 + 2]!);
    }
  };

  send(datagram: Buffer | DhcpPacket, port: number, address: string): void {
    if (this.closed) return;
    const isBytes = Buffer.isBuffer(datagram);
    // A packet takes at most MAX_PACKET_SIZE (serializePacketInto refuses more).
    if (this.queued === SEND_SLOTS || this.queuedBytes + (isBytes ? datagram.length : MAX_PACKET_SIZE) > this.sbuf.length) this.flush();
    const m = this.queued * 4;
    const len = isBytes ? datagram.copy(this.sbuf, this.queuedBytes) : serializePacketInto(datagram, this.sbuf, this.queuedBytes);
    this.smeta[m] = this.queuedBytes;
    this.smeta[m + 1] = len;
    this.smeta[m + 2] = ipToU32(address);
    this.smeta[m + 3] = port;
    this.queued++;
    this.queuedBytes += len;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const n = this.queued;
    if (n === 0 || this.closed) return;
    this.queued = 0;
    this.queuedBytes = 0;
    const failed = this.addon.udpSend(this.handle, this.sbuf, this.smeta, n);
    if (failed > 0) this.o.onError(errno(this.smeta[0]!, `sendmmsg (${failed} of ${n} replies)`));
  };

  close(): Promise<void> {
    if (!this.closed) {
      this.flush();
      this.closed = true;
      this.addon.udpClose(this.handle);
    }
    return Promise.resolve();
  }
}

class JsUdpSocket implements DhcpSocket {
  readonly kind = 'js';
  /** One callback for every send (no closure per reply): dgram reports send errors only through it. */
  private readonly onSent: (err: Error | null) => void;

  private constructor(
    private readonly s: Socket,
    onError: (err: Error) => void,
  ) {
    this.onSent = (err) => {
      if (err) onError(err);
    };
  }

  static open(o: UdpSocketOptions): Promise<JsUdpSocket> {
    return new Promise((resolve, reject) => {
      const s = createSocket({ type: 'udp4', reuseAddr: true, lookup: literalLookup as never });
      const onError = (e: Error) => {
        s.close();
        reject(e);
      };
      s.once('error', onError);
      s.on('message', (msg, rinfo) => o.onDatagram(msg, rinfo.address, rinfo.port));
      s.bind({ address: o.address, port: o.port, exclusive: false }, () => {
        s.off('error', onError);
        if (o.broadcast) s.setBroadcast(true);
        // A boot storm delivers hundreds of DISCOVERs in one burst: the default receive buffer (~200 KB, a
        // few hundred datagrams) overflows and every drop costs the client a retransmission timeout (seconds).
        // The kernel caps the request at net.core.rmem_max.
        try {
          s.setRecvBufferSize(o.recvBufferSize);
        } catch {
          /* not permitted: keep the default */
        }
        s.on('error', o.onError);
        resolve(new JsUdpSocket(s, o.onError));
      });
    });
  }

  send(datagram: Buffer | DhcpPacket, port: number, address: string): void {
    this.s.send(Buffer.isBuffer(datagram) ? datagram : serializePacket(datagram), port, address, this.onSent);
  }

  close(): Promise<void> {
    return new Promise<void>((r) => this.s.close(() => r()));
  }
}

function dhcpIoAddon(load: () => AddonLoad): DhcpIoAddon | undefined {
  const l = load();
  if (!l.ok) return undefined;
  const a = l.addon as unknown as Partial<DhcpIoAddon>;
  return typeof a.udpOpen === 'function' && typeof a.udpSend === 'function' && typeof a.udpClose === 'function' ? (a as DhcpIoAddon) : undefined;
}

/** Which socket implementation `openUdpSocket` uses for `io`, and why not native when it does not. */
export function selectDhcpIo(io: DhcpIo, load: () => AddonLoad = nativeAddon): { kind: 'native' | 'js'; reason?: string } {
  if (io === 'js') return { kind: 'js' };
  if (dhcpIoAddon(load)) return { kind: 'native' };
  const l = load();
  return { kind: 'js', reason: l.ok ? `${l.path} has no DHCP socket functions (built before dhcp_io.c)` : l.reason };
}

/** Opens and binds one socket (reuseaddr, as the server's sockets share port 67). Rejects when bind fails. */
export async function openUdpSocket(io: DhcpIo, o: UdpSocketOptions, load: () => AddonLoad = nativeAddon): Promise<DhcpSocket> {
  const addon = io === 'auto' ? dhcpIoAddon(load) : undefined;
  if (!addon) return JsUdpSocket.open(o);
  try {
    return new NativeUdpSocket(addon, o);
  } catch (e) {
    const n = (e as { errno?: number }).errno;
    // The same code dgram's bind error carries (EADDRINUSE, EADDRNOTAVAIL, EACCES …).
    throw n === undefined ? e : Object.assign(e as Error, { code: errnoNames.get(n) ?? `errno ${n}`, address: o.address, port: o.port });
  }
}
