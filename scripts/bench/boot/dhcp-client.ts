/**
 * A relay-simulating DHCP client for load tests: many machines (distinct MACs) do DISCOVER/OFFER/REQUEST/ACK
 * through one UDP socket bound to the relay's address, port 67. Every request carries giaddr = that address
 * and hops = 1, so every server (ours, dnsmasq, Kea) answers by unicast to giaddr:67 and this one socket
 * receives all replies; replies are matched to machines by xid (and chaddr).
 *
 * Requests look like a BIOS PXE ROM's (options 55, 57, 60 PXEClient:Arch:00000, 93, 94, 97), so servers take
 * their PXE path and put a boot file in the reply. Retransmission: a fixed timeout per attempt, `retries`
 * resends per phase (DISCOVER, then REQUEST), like a firmware client but faster.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { MessageType, Opt } from '../../../agent/dhcp/options.js';
import { BOOTREPLY, BOOTREQUEST, emptyPacket, macOf, parsePacket, serializePacket } from '../../../agent/dhcp/packet.js';

export interface DoraResult {
  mac: string;
  ok: boolean;
  address?: string;
  serverId?: string;
  bootFile?: string;
  nextServer?: string;
  /** Send of the first DISCOVER to the ACK, ms. */
  ms: number;
  /** Send of the first DISCOVER to the (last) OFFER, ms: the part without the server's lease fsync. */
  offerMs?: number;
  /** Packets re-sent after a timeout. */
  resends: number;
  /** NAKs received (each restarts the DORA with a new DISCOVER, as RFC 2131 3.1 has a client do). */
  naks: number;
  error?: string;
}

interface Pending {
  mac: string;
  xid: number;
  phase: 'discover' | 'request';
  discover: Buffer;
  request?: Buffer;
  offered?: string;
  serverId?: string;
  started: number;
  offerAt?: number;
  tries: number;
  resends: number;
  naks: number;
  timer?: NodeJS.Timeout;
  resolve: (r: DoraResult) => void;
}

export interface RelayClientOptions {
  relay: string;
  server: string;
  serverPort?: number;
  timeoutMs?: number;
  retries?: number;
  /**
   * Per-attempt timeouts, ms, instead of timeoutMs and retries: a PXE ROM's schedule is 4, 8, 16, 32 s
   * (PXE 2.1, DHCPDISCOVER and DHCPREQUEST alike): one send, then one resend after each but the last.
   */
  scheduleMs?: number[];
}

const PARAMS = Buffer.from([1, 2, 3, 5, 6, 11, 12, 13, 15, 16, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135]);

export class RelayDhcpClient {
  private sock?: Socket;
  private readonly byXid = new Map<number, Pending>();
  private readonly o: Required<Omit<RelayClientOptions, 'scheduleMs'>> & Pick<RelayClientOptions, 'scheduleMs'>;
  readonly counters = { sent: 0, received: 0, unmatched: 0, offers: 0, acks: 0, naks: 0 };

  constructor(o: RelayClientOptions) {
    this.o = { serverPort: 67, timeoutMs: 1000, retries: 4, ...o };
    if (o.scheduleMs) {
      if (o.scheduleMs.length === 0) throw new Error('scheduleMs: at least one timeout');
      this.o.retries = o.scheduleMs.length - 1;
    }
  }

  async open(): Promise<void> {
    const s = createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ address: this.o.relay, port: 67, exclusive: true }, () => {
        s.off('error', reject);
        resolve();
      });
    });
    // Replies to up to a few thousand outstanding machines may arrive in one burst (net.core.rmem_max caps it).
    try {
      s.setRecvBufferSize(4 * 1024 * 1024);
      s.setSendBufferSize(4 * 1024 * 1024);
    } catch {
      /* capped */
    }
    s.on('message', (msg) => this.onMessage(msg));
    s.on('error', () => undefined);
    this.sock = s;
  }

  close(): Promise<void> {
    for (const p of this.byXid.values()) clearTimeout(p.timer);
    return new Promise((r) => (this.sock ? this.sock.close(() => r()) : r()));
  }

  /** One machine's DORA; never rejects. */
  dora(mac: string): Promise<DoraResult> {
    return new Promise((resolve) => {
      const xid = this.newXid();
      const p: Pending = { mac, xid, phase: 'discover', discover: this.build(mac, xid, MessageType.DISCOVER), started: performance.now(), tries: 0, resends: 0, naks: 0, resolve };
      this.byXid.set(xid, p);
      this.send(p, p.discover);
    });
  }

  private newXid(): number {
    let xid: number;
    do xid = randomBytes(4).readUInt32BE(0);
    while (this.byXid.has(xid));
    return xid;
  }

  private build(mac: string, xid: number, type: number, requested?: string, serverId?: string): Buffer {
    const pkt = emptyPacket(BOOTREQUEST, mac, xid);
    pkt.giaddr = this.o.relay;
    pkt.hops = 1;
    const o = pkt.options;
    o.set(Opt.MESSAGE_TYPE, Buffer.from([type]));
    if (requested) o.set(Opt.REQUESTED_IP, Buffer.from(requested.split('.').map(Number)));
    if (serverId) o.set(Opt.SERVER_ID, Buffer.from(serverId.split('.').map(Number)));
    o.set(Opt.PARAM_LIST, PARAMS);
    o.set(Opt.MAX_SIZE, Buffer.from([0x04, 0xec]));
    o.set(Opt.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00000:UNDI:002001'));
    o.set(Opt.CLIENT_ARCH, Buffer.from([0, 0]));
    o.set(Opt.CLIENT_NDI, Buffer.from([1, 2, 1]));
    const uuid = Buffer.alloc(17);
    Buffer.from(mac.replace(/:/g, ''), 'hex').copy(uuid, 11);
    o.set(Opt.CLIENT_UUID, uuid);
    return serializePacket(pkt);
  }

  private send(p: Pending, bytes: Buffer): void {
    this.counters.sent++;
    this.sock!.send(bytes, this.o.serverPort, this.o.server);
    clearTimeout(p.timer);
    const sched = this.o.scheduleMs;
    p.timer = setTimeout(() => this.onTimeout(p), sched ? sched[Math.min(p.tries, sched.length - 1)]! : this.o.timeoutMs);
  }

  private onTimeout(p: Pending): void {
    if (this.byXid.get(p.xid) !== p) return;
    if (p.tries >= this.o.retries) {
      this.finish(p, { ok: false, error: `timeout in ${p.phase}` });
      return;
    }
    p.tries++;
    p.resends++;
    this.send(p, p.phase === 'discover' ? p.discover : p.request!);
  }

  private finish(p: Pending, r: Omit<DoraResult, 'mac' | 'ms' | 'offerMs' | 'resends' | 'naks'>): void {
    clearTimeout(p.timer);
    this.byXid.delete(p.xid);
    p.resolve({ mac: p.mac, ms: performance.now() - p.started, ...(p.offerAt !== undefined ? { offerMs: p.offerAt - p.started } : {}), resends: p.resends, naks: p.naks, ...r });
  }

  private onMessage(msg: Buffer): void {
    this.counters.received++;
    let pkt;
    try {
      pkt = parsePacket(msg);
    } catch {
      this.counters.unmatched++;
      return;
    }
    const p = this.byXid.get(pkt.xid);
    if (!p || pkt.op !== BOOTREPLY || macOf(pkt) !== p.mac) {
      this.counters.unmatched++;
      return;
    }
    const type = pkt.options.get(Opt.MESSAGE_TYPE)?.[0];
    const sid = pkt.options.get(Opt.SERVER_ID);
    const serverId = sid && sid.length === 4 ? [...sid].join('.') : undefined;
    if (type === MessageType.OFFER && p.phase === 'discover') {
      this.counters.offers++;
      p.offerAt = performance.now();
      p.phase = 'request';
      p.offered = pkt.yiaddr;
      p.serverId = serverId;
      p.tries = 0;
      p.request = this.build(p.mac, p.xid, MessageType.REQUEST, pkt.yiaddr, serverId);
      this.send(p, p.request);
    } else if (type === MessageType.ACK && p.phase === 'request') {
      this.counters.acks++;
      const bf = pkt.options.get(Opt.BOOTFILE);
      const bootFile = pkt.file || (bf ? bf.toString('latin1').replace(/\0+$/, '') : undefined);
      this.finish(p, { ok: pkt.yiaddr === p.offered, address: pkt.yiaddr, ...(serverId ? { serverId } : {}), ...(bootFile ? { bootFile } : {}), nextServer: pkt.siaddr, ...(pkt.yiaddr === p.offered ? {} : { error: `ACK for ${pkt.yiaddr}, offered ${p.offered}` }) });
    } else if (type === MessageType.NAK && p.phase === 'request') {
      this.counters.naks++;
      p.naks++;
      if (p.naks > 3) {
        this.finish(p, { ok: false, error: `NAK: ${pkt.options.get(Opt.MESSAGE)?.toString() ?? ''}` });
        return;
      }
      // Start over with a new transaction.
      clearTimeout(p.timer);
      this.byXid.delete(p.xid);
      p.xid = this.newXid();
      p.phase = 'discover';
      p.tries = 0;
      p.discover = this.build(p.mac, p.xid, MessageType.DISCOVER);
      this.byXid.set(p.xid, p);
      this.send(p, p.discover);
    }
  }
}

/** MAC number i under a 3-byte prefix (locally administered). */
export function macFor(prefix: number, i: number): string {
  const b = [0x02, (prefix >> 8) & 0xff, prefix & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Addresses held by more than one MAC among successful results. */
export function duplicateAddresses(results: DoraResult[]): string[] {
  const owner = new Map<string, string>();
  const dups = new Set<string>();
  for (const r of results) {
    if (!r.ok || !r.address) continue;
    const o = owner.get(r.address);
    if (o !== undefined && o !== r.mac) dups.add(r.address);
    else owner.set(r.address, r.mac);
  }
  return [...dups];
}
