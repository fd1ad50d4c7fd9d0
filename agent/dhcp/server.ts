/**
 * The site agent's DHCPv4 server: full DHCP with PXE, proxyDHCP (ports 67 and 4011), or off.
 *
 * Sockets (node:dgram has no SO_BINDTODEVICE, see docs/decisions.md): one socket on 0.0.0.0:port receives
 * broadcasts; one socket per local address (the server address, plus the interface's other IPv4 addresses
 * when `interface` is set) receives unicast (relays, renewals) and sends every reply. A socket bound to an
 * address sends limited broadcasts out of the interface owning that address, and replies to a relay leave
 * from the address the relay targeted. With `interface` set, broadcasts from sources outside that
 * interface's subnets are dropped. The sockets are the addon's (recvmmsg/sendmmsg in batches) when it is
 * built, else node:dgram, with the same behaviour either way (udp.ts). SO_BINDTODEVICE and IP_PKTINFO are
 * not used on either path, so the layout above holds for both.
 */
import { networkInterfaces } from 'node:os';
import { z } from 'zod';
import { silentLogger, type Logger } from '../../shared/log/logger.js';
import { DhcpModeSchema, Ipv4Schema, type LeaseEvent, type MachineFacts, type Reservation, type Subnet } from '../../shared/dhcp/config.js';
import { replyDestination, type ReplyDestination } from './addressing.js';
import { inCidr, isIpv4 } from '../../shared/dhcp/ip.js';
import { LeaseStore, type LeaseRecord } from './leases.js';
import { MessageType, messageTypeName, Opt } from './options.js';
import { BOOTREQUEST, DhcpParseError, parsePacket, type DhcpPacket } from './packet.js';
import { selectBoot, type BootDecision } from './pxe.js';
import { DhcpIntake, type IntakeStats } from './intake.js';
import { buildReply, type ReplySpec } from './reply.js';
import { decodeRequest, isNetbootClient, type ClientRequest } from './request.js';
import { selectSubnet } from './subnet-select.js';
import { openUdpSocket, selectDhcpIo, type DhcpIo, type DhcpSocket } from './udp.js';

export interface DhcpServerOptions {
  mode: 'full' | 'proxy' | 'off';
  /** The provisioning interface (Linux name). Optional: without it no source filtering is done. */
  interface?: string;
  /** The agent's address on the provisioning network: server identifier, TFTP server, reply source. */
  serverAddress: string;
  port?: number;
  proxyPort?: number;
  clientPort?: number;
  /** TFTP server for siaddr (default: serverAddress). */
  tftpServer?: string;
  subnets: () => Subnet[];
  reservations: () => Reservation[];
  lookupMachine: (mac: string) => MachineFacts | Promise<MachineFacts>;
  bootUrls: { ipxeScript: string; httpBoot: string };
  /** Lease journal (required in full mode). */
  leaseFile?: string;
  logger?: Logger;
  onLeaseEvent?: (e: LeaseEvent) => void;
  offerHoldSec?: number;
  declineQuarantineSec?: number;
  /** How often expired leases are swept (and `expire` events emitted). */
  sweepIntervalSec?: number;
  /** How long to wait at start for `interface` to come up with its address (default 120 s). */
  interfaceWaitSec?: number;
  /**
   * Sockets: 'auto' (default) reads and writes them in batches through the agent's native addon
   * (recvmmsg/sendmmsg, agent/tftp/native/dhcp_io.c) when it is built, else node:dgram; 'js': node:dgram.
   */
  io?: DhcpIo;
}

const PortSchema = z.number().int().min(1).max(65535);
const fn = z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', { message: 'expected a function' });

export const DhcpServerOptionsSchema = z
  .object({
    mode: DhcpModeSchema,
    interface: z.string().min(1).max(15).optional(),
    serverAddress: Ipv4Schema,
    port: PortSchema.default(67),
    proxyPort: PortSchema.default(4011),
    clientPort: PortSchema.default(68),
    tftpServer: Ipv4Schema.optional(),
    subnets: fn,
    reservations: fn,
    lookupMachine: fn,
    bootUrls: z.object({ ipxeScript: z.url(), httpBoot: z.url() }),
    leaseFile: z.string().min(1).optional(),
    logger: z.any().optional(),
    onLeaseEvent: fn.optional(),
    offerHoldSec: z.number().positive().default(30),
    declineQuarantineSec: z.number().nonnegative().default(600),
    sweepIntervalSec: z.number().positive().default(10),
    interfaceWaitSec: z.number().min(0).default(120),
    io: z.enum(['auto', 'js']).default('auto'),
  })
  .refine((o) => o.mode !== 'full' || !!o.leaseFile, { message: 'leaseFile is required in full mode', path: ['leaseFile'] });

export interface DhcpServerStats {
  /** Which sockets are in use (see udp.ts), once started. */
  io?: 'native' | 'js';
  received: number;
  malformed: number;
  ignored: number;
  sent: Record<string, number>;
  byType: Record<string, number>;
  /** Requests by subnet (CIDR) and message type number, full mode (the agent's metrics read them). */
  bySubnet: Record<string, Record<number, number>>;
  /** Replies by subnet (CIDR) and message type name (offer, ack, nak), full mode. */
  repliesBySubnet: Record<string, Record<string, number>>;
  errors: number;
  /** Datagrams dropped by the intake under overload (see intake.ts). */
  intake: IntakeStats;
  leases?: ReturnType<LeaseStore['stats']>;
}

export interface Outgoing {
  packet: DhcpPacket;
  to: ReplyDestination;
  /** The local address the reply is sent from. */
  from: string;
  /** Which listener: the DHCP port or the proxyDHCP port. */
  listener: 'dhcp' | 'proxy';
}

export interface Incoming {
  from: { address: string; port: number };
  /** The local address the packet was addressed to; '0.0.0.0' for broadcasts (wildcard socket). */
  localAddress: string;
  listener: 'dhcp' | 'proxy';
}

/** Requested socket receive buffer (see bind()). */
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Datagrams handled per event-loop turn: libuv's read batch (32 per socket per turn), so the server never
 * reads more than it handles (reading ahead to drop in user space cost more than it saved: docs/decisions.md)
 * while each batch is handled REQUESTs first.
 */
const HANDLE_PER_TURN = 32;

const UNKNOWN_MACHINE: MachineFacts = { known: false, netboot: true };

export class DhcpServer {
  private readonly o: Omit<z.output<typeof DhcpServerOptionsSchema>, 'subnets' | 'reservations' | 'lookupMachine' | 'onLeaseEvent' | 'logger'> &
    Pick<DhcpServerOptions, 'subnets' | 'reservations' | 'lookupMachine' | 'onLeaseEvent'>;
  private readonly logger: Logger;
  private store?: LeaseStore;
  private sockets: DhcpSocket[] = [];
  private senders = new Map<string, DhcpSocket>();
  private proxySocket?: DhcpSocket;
  private localAddresses: string[] = [];
  private localCidrs: string[] = [];
  private sweepTimer?: NodeJS.Timeout;
  private running = false;
  private st: Omit<DhcpServerStats, 'intake'> = { received: 0, malformed: 0, ignored: 0, sent: {}, byType: {}, bySubnet: {}, repliesBySubnet: {}, errors: 0 };
  private readonly intake = new DhcpIntake<Incoming>();
  private draining = false;

  constructor(options: DhcpServerOptions) {
    const parsed = DhcpServerOptionsSchema.safeParse(options);
    if (!parsed.success) throw new Error(`invalid DHCP server options: ${z.prettifyError(parsed.error)}`);
    const { onLeaseEvent: _e, logger: _l, subnets: _s, reservations: _r, lookupMachine: _m, ...data } = parsed.data;
    this.o = { ...data, subnets: options.subnets, reservations: options.reservations, lookupMachine: options.lookupMachine, ...(options.onLeaseEvent ? { onLeaseEvent: options.onLeaseEvent } : {}) };
    this.logger = options.logger ?? silentLogger;
    this.localAddresses = [this.o.serverAddress];
  }

  /** Open the lease store (full mode) without binding sockets: `handlePacket` works after this. */
  async init(): Promise<void> {
    if (this.o.mode === 'full' && !this.store) {
      this.store = await LeaseStore.open({
        file: this.o.leaseFile!,
        logger: this.logger,
        offerHoldMs: this.o.offerHoldSec * 1000,
        declineQuarantineMs: this.o.declineQuarantineSec * 1000,
        ...(this.o.onLeaseEvent ? { onEvent: this.o.onLeaseEvent } : {}),
      });
    }
    if (this.o.interface) {
      // A bridge without a port has no carrier and Node lists no address for it: wait for the link
      // (a VM's tap or a cable) instead of failing at start.
      let addrs = (networkInterfaces()[this.o.interface] ?? []).filter((a) => a.family === 'IPv4');
      for (let waited = 0; addrs.length === 0 && waited < this.o.interfaceWaitSec * 1000; waited += 500) {
        if (waited === 0) this.logger.warn({ interface: this.o.interface }, 'dhcp: waiting for the interface to come up with its IPv4 address');
        await new Promise((r) => setTimeout(r, 500));
        addrs = (networkInterfaces()[this.o.interface] ?? []).filter((a) => a.family === 'IPv4');
      }
      if (addrs.length === 0) throw new Error(`interface ${this.o.interface} has no IPv4 address (waited ${this.o.interfaceWaitSec} s for its link)`);
      if (!addrs.some((a) => a.address === this.o.serverAddress)) throw new Error(`${this.o.serverAddress} is not an address of ${this.o.interface}`);
      this.localAddresses = [this.o.serverAddress, ...addrs.map((a) => a.address).filter((a) => a !== this.o.serverAddress)];
      this.localCidrs = addrs.filter((a) => a.cidr).map((a) => a.cidr!);
    }
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.init();
    if (this.o.mode === 'off') {
      this.running = true;
      this.logger.info('dhcp: mode off');
      return;
    }
    try {
      const io = selectDhcpIo(this.o.io);
      if (io.reason) this.logger.warn({ reason: io.reason }, 'dhcp: native socket path unavailable, using node:dgram');
      const wild = await this.bind('0.0.0.0', this.o.port, 'dhcp', false);
      this.sockets.push(wild);
      for (const a of this.localAddresses) {
        const s = await this.bind(a, this.o.port, 'dhcp', true);
        this.sockets.push(s);
        this.senders.set(a, s);
      }
      if (this.o.mode === 'proxy') {
        this.proxySocket = await this.bind(this.o.serverAddress, this.o.proxyPort, 'proxy', false);
        this.sockets.push(this.proxySocket);
      }
    } catch (e) {
      await this.closeSockets();
      throw e;
    }
    if (this.store) {
      this.sweepTimer = setInterval(() => {
        this.store?.sweep().catch((e) => this.logger.error({ err: e }, 'dhcp: lease sweep failed'));
      }, this.o.sweepIntervalSec * 1000);
      this.sweepTimer.unref();
    }
    this.running = true;
    this.logger.info({ mode: this.o.mode, addresses: this.localAddresses, port: this.o.port, interface: this.o.interface, io: this.sockets[0]?.kind }, 'dhcp: listening');
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    await this.closeSockets();
    await this.store?.close();
    this.store = undefined;
    this.running = false;
  }

  stats(): DhcpServerStats {
    return { ...(this.sockets[0] ? { io: this.sockets[0].kind } : {}), ...this.st, sent: { ...this.st.sent }, byType: { ...this.st.byType }, repliesBySubnet: structuredClone(this.st.repliesBySubnet), intake: this.intake.stats(), ...(this.store ? { leases: this.store.stats() } : {}) };
  }

  leases(): LeaseRecord[] {
    return this.store?.all() ?? [];
  }

  /**
   * Decide the reply to one datagram. Never throws: malformed input is counted, logged at debug and
   * answered with null.
   */
  async handlePacket(buf: Buffer, inc: Incoming): Promise<Outgoing | null> {
    this.st.received++;
    let req: ClientRequest;
    try {
      const packet = parsePacket(buf);
      if (packet.op !== BOOTREQUEST) return this.ignore('not a BOOTREQUEST', inc);
      req = decodeRequest(packet);
    } catch (e) {
      this.st.malformed++;
      const code = e instanceof DhcpParseError ? e.code : 'unexpected';
      this.logger.debug({ from: inc.from, code, err: (e as Error).message, bytes: buf.length }, 'dhcp: malformed packet dropped');
      return null;
    }
    if (req.messageType === undefined) return this.ignore('BOOTP (no option 53) is not served', inc, req);
    const typeName = messageTypeName(req.messageType) ?? `type-${req.messageType}`;
    this.st.byType[typeName] = (this.st.byType[typeName] ?? 0) + 1;
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ type: typeName, mac: req.mac, from: inc.from, to: inc.localAddress, listener: inc.listener, ciaddr: req.packet.ciaddr, giaddr: req.packet.giaddr, ...(req.vendorClass !== undefined ? { vendorClass: req.vendorClass } : {}), ...(req.userClass.length ? { userClass: req.userClass } : {}), ...(req.clientArch ? { arch: req.clientArch } : {}), ...(req.relayAgentRaw ? { opt82: req.relayAgentRaw.toString('hex') } : {}) }, 'dhcp: request received');
    if (this.o.interface && inc.localAddress === '0.0.0.0' && req.packet.giaddr === '0.0.0.0' && inc.from.address !== '0.0.0.0' && !this.localCidrs.some((c) => inCidr(inc.from.address, c))) {
      return this.ignore('broadcast from outside the interface', inc, req);
    }
    try {
      if (this.o.mode === 'proxy') return await this.handleProxy(req, inc);
      if (this.o.mode === 'full') return await this.handleFull(req, inc);
      return null;
    } catch (e) {
      this.st.errors++;
      this.logger.error({ err: e, mac: req.mac, type: typeName }, 'dhcp: error handling request');
      return null;
    }
  }

  // ---- full mode ----------------------------------------------------------------------------------------

  private async handleFull(req: ClientRequest, inc: Incoming): Promise<Outgoing | null> {
    const local = inc.localAddress === '0.0.0.0' ? this.o.serverAddress : inc.localAddress;
    const subnets = this.o.subnets();
    const sel = selectSubnet(req, subnets, local);
    if (!sel.subnet) return this.ignore(`no subnet for ${sel.by} ${sel.address}`, inc, req);
    const subnet = sel.subnet;
    const perSubnet = (this.st.bySubnet[subnet.cidr] ??= {});
    perSubnet[req.messageType!] = (perSubnet[req.messageType!] ?? 0) + 1;
    const reservations = this.o.reservations();
    const reservation = reservations.find((r) => r.mac === req.mac && inCidr(r.address, subnet.cidr));
    if (subnet.reservationsOnly && !reservation) return this.ignore('unknown MAC on a reservations-only subnet', inc, req);
    const store = this.store!;
    const ctxBase = { subnet, mac: req.mac, reservations, exclude: this.localAddresses };
    const serverId = req.relayAgent?.serverIdOverride ?? local;
    const isOurs = (id: string) => this.localAddresses.includes(id) || id === req.relayAgent?.serverIdOverride;
    const hostname = reservation?.hostname ?? sanitizeHostname(req.hostname);

    switch (req.messageType) {
      case MessageType.DISCOVER: {
        const offer = store.offer({ ...ctxBase, ...(req.requestedIp ? { requested: req.requestedIp } : {}) });
        if (!offer.ok) return this.ignore(`no address to offer: ${offer.reason}`, inc, req, 'warn');
        const boot = await this.boot(req, subnet);
        return this.reply(req, inc, local, { type: MessageType.OFFER, serverId, yiaddr: offer.address, subnet, leaseTimeSec: subnet.leaseTimeSec, ...(hostname ? { hostname } : {}), boot });
      }
      case MessageType.REQUEST: {
        const p = req.packet;
        let address: string;
        if (req.serverId) {
          // SELECTING
          if (!isOurs(req.serverId)) {
            store.dropOffer(subnet.cidr, req.mac);
            return this.ignore(`client selected server ${req.serverId}`, inc, req, 'debug');
          }
          const a = req.requestedIp ?? (p.ciaddr !== '0.0.0.0' ? p.ciaddr : undefined);
          if (!a) return this.ignore('REQUEST without requested address', inc, req);
          address = a;
        } else if (req.requestedIp && p.ciaddr === '0.0.0.0') {
          // INIT-REBOOT: NAK when wrong, silent when we have no record of the client.
          address = req.requestedIp;
          if (!inCidr(address, subnet.cidr)) return this.nak(req, inc, local, subnet.cidr, serverId, `${address} is not on ${subnet.cidr}`);
          const mine = store.forMac(subnet.cidr, req.mac);
          const check = store.canBind({ ...ctxBase, address });
          if (!check.ok) return this.nak(req, inc, local, subnet.cidr, serverId, check.reason);
          if (!mine || mine.address !== address) {
            if (mine) return this.nak(req, inc, local, subnet.cidr, serverId, `${req.mac} holds ${mine.address}`);
            return this.ignore(`INIT-REBOOT for ${address} without a record`, inc, req, 'debug');
          }
        } else if (p.ciaddr !== '0.0.0.0') {
          // RENEWING (unicast) or REBINDING (broadcast)
          address = p.ciaddr;
          if (!inCidr(address, subnet.cidr)) return this.nak(req, inc, local, subnet.cidr, serverId, `${address} is not on ${subnet.cidr}`);
        } else {
          return this.ignore('REQUEST with neither server id, requested address nor ciaddr', inc, req);
        }
        const bound = await store.bind({ ...ctxBase, address, leaseTimeSec: subnet.leaseTimeSec, ...(hostname ? { hostname } : {}) });
        if (!bound.ok) return this.nak(req, inc, local, subnet.cidr, serverId, bound.reason);
        const boot = await this.boot(req, subnet);
        return this.reply(req, inc, local, { type: MessageType.ACK, serverId, yiaddr: address, subnet, leaseTimeSec: subnet.leaseTimeSec, ...(hostname ? { hostname } : {}), boot });
      }
      case MessageType.DECLINE: {
        if (req.serverId && !isOurs(req.serverId)) return this.ignore('DECLINE for another server', inc, req, 'debug');
        if (!req.requestedIp) return this.ignore('DECLINE without option 50', inc, req);
        const done = await store.decline(subnet.cidr, req.mac, req.requestedIp);
        this.logger.warn({ mac: req.mac, address: req.requestedIp, quarantined: done }, 'dhcp: client declined an address');
        return null;
      }
      case MessageType.RELEASE: {
        const done = await store.release(subnet.cidr, req.mac, req.packet.ciaddr);
        this.logger.info({ mac: req.mac, address: req.packet.ciaddr, released: done }, 'dhcp: release');
        return null;
      }
      case MessageType.INFORM: {
        const boot = await this.boot(req, subnet);
        return this.reply(req, inc, local, { type: MessageType.ACK, serverId, subnet, boot });
      }
      default:
        return this.ignore(`message type ${req.messageType} is not for a server`, inc, req);
    }
  }

  // ---- proxy mode ---------------------------------------------------------------------------------------

  private async handleProxy(req: ClientRequest, inc: Incoming): Promise<Outgoing | null> {
    if (!isNetbootClient(req) || !/^(PXEClient|HTTPClient)/.test(req.vendorClass ?? '')) return this.ignore('proxyDHCP answers PXE clients only', inc, req, 'debug');
    const local = inc.localAddress === '0.0.0.0' ? this.o.serverAddress : inc.localAddress;
    const wanted: number[] = inc.listener === 'dhcp' ? [MessageType.DISCOVER] : [MessageType.REQUEST, MessageType.INFORM];
    if (!wanted.includes(req.messageType!)) return this.ignore(`proxyDHCP ignores ${messageTypeName(req.messageType!)} on the ${inc.listener} port`, inc, req, 'debug');
    const boot = await this.boot(req, undefined);
    if (boot.kind !== 'boot') return this.ignore(`no boot file: ${boot.reason}`, inc, req, 'debug');
    const spec: ReplySpec = { type: inc.listener === 'dhcp' ? MessageType.OFFER : MessageType.ACK, serverId: local, boot, bootOnly: true };
    if (inc.listener === 'proxy') {
      // Port 4011: unicast back to wherever the request came from.
      const packet = buildReply(req, spec);
      return this.count({ packet, to: { address: inc.from.address, port: inc.from.port, broadcast: false }, from: local, listener: 'proxy' });
    }
    return this.reply(req, inc, local, spec);
  }

  // ---- helpers ------------------------------------------------------------------------------------------

  private async boot(req: ClientRequest, subnet: Subnet | undefined): Promise<BootDecision> {
    let machine: MachineFacts;
    try {
      machine = (await this.o.lookupMachine(req.mac)) ?? UNKNOWN_MACHINE;
    } catch (e) {
      this.logger.error({ err: e, mac: req.mac }, 'dhcp: lookupMachine failed; treating the machine as unknown');
      machine = UNKNOWN_MACHINE;
    }
    const d = selectBoot(req, {
      machine,
      ...(subnet?.ipxeBinary ? { subnetIpxeBinary: subnet.ipxeBinary } : {}),
      ipxeScriptUrl: this.o.bootUrls.ipxeScript,
      httpBootUrl: this.o.bootUrls.httpBoot,
      tftpServer: this.o.tftpServer ?? subnet?.nextServer ?? this.o.serverAddress,
    });
    if (d.kind === 'none' && d.reason !== 'not-netboot-client') this.logger.info({ mac: req.mac, reason: d.reason, arch: d.arch }, 'dhcp: no boot file');
    return d;
  }

  /** `subnetCidr`: the subnet a reply without subnet options (a NAK) is counted under. */
  private reply(req: ClientRequest, inc: Incoming, local: string, spec: ReplySpec, subnetCidr?: string): Outgoing {
    const packet = buildReply(req, spec);
    const to = replyDestination(req.packet, spec.type === MessageType.NAK, { server: this.o.port, client: this.o.clientPort });
    return this.count({ packet, to, from: local, listener: inc.listener }, subnetCidr ?? spec.subnet?.cidr);
  }

  private nak(req: ClientRequest, inc: Incoming, local: string, subnetCidr: string, serverId: string, why: string): Outgoing {
    this.logger.info({ mac: req.mac, why }, 'dhcp: NAK');
    return this.reply(req, inc, local, { type: MessageType.NAK, serverId, message: why }, subnetCidr);
  }

  private count(out: Outgoing, subnetCidr?: string): Outgoing {
    const t = messageTypeName(out.packet.options.get(Opt.MESSAGE_TYPE)![0]!) ?? 'unknown';
    this.st.sent[t] = (this.st.sent[t] ?? 0) + 1;
    if (subnetCidr) {
      const per = (this.st.repliesBySubnet[subnetCidr] ??= {});
      per[t] = (per[t] ?? 0) + 1;
    }
    return out;
  }

  private ignore(why: string, inc: Incoming, req?: ClientRequest, level: 'debug' | 'info' | 'warn' = 'info'): null {
    this.st.ignored++;
    this.logger[level]({ from: inc.from, mac: req?.mac, type: req?.messageType ? messageTypeName(req.messageType) : undefined, why }, 'dhcp: request ignored');
    return null;
  }

  /** Which socket implementation is in use ('native' or 'js'), once started. */
  io(): 'native' | 'js' | undefined {
    return this.sockets[0]?.kind;
  }

  private bind(address: string, port: number, listener: 'dhcp' | 'proxy', broadcast: boolean): Promise<DhcpSocket> {
    return openUdpSocket(this.o.io, {
      address,
      port,
      broadcast,
      recvBufferSize: RECV_BUFFER_BYTES,
      onDatagram: (buf, fromAddress, fromPort) => this.enqueue(buf, { from: { address: fromAddress, port: fromPort }, localAddress: address, listener }),
      onError: (e) => {
        this.st.errors++;
        this.logger.error({ err: e, address, port }, 'dhcp: socket error');
      },
    });
  }

  private enqueue(msg: Buffer, inc: Incoming): void {
    this.intake.push(msg, inc);
    if (!this.draining) {
      this.draining = true;
      setImmediate(this.drain);
    }
  }

  /** Handles a few queued datagrams, then yields to the loop (which reads the sockets again). */
  private readonly drain = (): void => {
    for (let i = 0; i < HANDLE_PER_TURN; i++) {
      const item = this.intake.next();
      if (!item) break;
      void this.onMessage(item.buf, item.meta);
    }
    if (this.intake.length > 0 && this.sockets.length > 0) setImmediate(this.drain);
    else this.draining = false;
  };

  private async onMessage(msg: Buffer, inc: Incoming): Promise<void> {
    const out = await this.handlePacket(msg, inc);
    if (!out) return;
    const sock = out.listener === 'proxy' ? this.proxySocket : (this.senders.get(out.from) ?? this.senders.get(this.o.serverAddress));
    if (!sock) return;
    try {
      sock.send(out.packet, out.to.port, out.to.address);
    } catch (e) {
      this.st.errors++;
      this.logger.error({ err: e }, 'dhcp: reply could not be serialized');
      return;
    }
    if (this.logger.isLevelEnabled('debug')) {
      this.logger.debug(
        { to: out.to, from: out.from, type: messageTypeName(out.packet.options.get(Opt.MESSAGE_TYPE)![0]!), yiaddr: out.packet.yiaddr, file: out.packet.file, ...(out.packet.options.has(Opt.RELAY_AGENT) ? { opt82: out.packet.options.get(Opt.RELAY_AGENT)!.toString('hex') } : {}) },
        'dhcp: reply sent', // logged once handed to the socket (a failure is logged by onSent)
      );
    }
  }

  private async closeSockets(): Promise<void> {
    await Promise.all(this.sockets.map((s) => s.close()));
    this.sockets = [];
    this.senders.clear();
    this.proxySocket = undefined;
  }
}

function sanitizeHostname(h: string | undefined): string | undefined {
  if (!h) return undefined;
  const s = h.replace(/[^a-zA-Z0-9.-]/g, '').slice(0, 63);
  return s && isIpv4(s) === false ? s : undefined;
}
