import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { silentLogger, type Logger } from '../../shared/log/logger.js';
import { FileCache } from './cache.js';
import { negotiate } from './options.js';
import { NativeTransfer, selectDataPath, type DataPathChoice, type NativeResult } from './native-data-path.js';
import { encodeError, encodeOack, ErrorCode, Opcode, parsePacket, type RequestPacket } from './packet.js';
import { realRoot, resolveRequestPath } from './paths.js';
import { FileSource, MemorySource, toNetascii, type ByteSource } from './source.js';
import { ReadTransfer, type TransferOutcome, type TransferResult } from './transfer.js';

/**
 * The site agent's TFTP server: read-only, one ephemeral UDP socket per transfer (RFC 1350 TIDs),
 * option negotiation (blksize, tsize, timeout, windowsize), small-file cache, streamed large files.
 */

export interface TftpTransferEvent {
  /** Filename as the client asked for it. */
  file: string;
  /** "ip:port" of the client. */
  client: string;
  /** Payload bytes the client acknowledged. */
  bytes: number;
  durationMs: number;
  outcome: TransferOutcome;
  error?: string;
  blksize?: number;
  windowsize?: number;
  retransmits?: number;
  /** Which data path served it: the native thread or the JS event loop. */
  dataPath?: 'native' | 'js';
}

export interface TftpStats {
  /** Read requests received (duplicates of an active request included). */
  requests: number;
  active: number;
  completed: number;
  sizeProbes: number;
  /** Transfers that ended in error (client abort, timeout, I/O), refusals excluded. */
  errors: number;
  timeouts: number;
  /** Requests refused before a transfer: not found, access violation, write, bad mode, no transfer socket. */
  refused: number;
  /**
   * RRQs dropped unanswered because maxTransfers were running: the client's firmware retransmits its RRQ
   * (PXE ROMs and iPXE back off and resend), so at capacity it comes back later instead of failing its boot
   * on an error packet.
   */
  shed: number;
  /** Undecodable packets, on the server port or a transfer's. */
  malformed: number;
  /** Retransmitted RRQs for a transfer already running (ignored). */
  duplicateRequests: number;
  duplicateAcks: number;
  packetsSent: number;
  retransmits: number;
  /** Payload bytes acknowledged by clients. */
  bytesSent: number;
  cacheHits: number;
  cacheMisses: number;
  cacheBytes: number;
}

const OptionsSchema = z.object({
  root: z.string().min(1, 'root is required'),
  address: z.ipv4().default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(69),
  /** Largest blksize granted (RFC 2348 allows 8..65464); 1468 fits an MTU of 1500. */
  maxBlksize: z.number().int().min(512).max(65464).default(1468),
  /** Largest windowsize granted (RFC 7440). */
  maxWindowsize: z.number().int().min(1).max(256).default(64),
  /** Retransmission timeout when the client does not negotiate one. */
  timeoutMs: z.number().int().min(10).max(255_000).default(1000),
  /** Resends of one window before a transfer is abandoned. */
  retries: z.number().int().min(0).max(50).default(5),
  /** Concurrent transfers; beyond this, requests are dropped unanswered (the client retransmits). */
  maxTransfers: z.number().int().min(1).max(100_000).default(2000),
  /** Files up to this size are kept in memory (iPXE binaries). */
  cacheMaxFileBytes: z.number().int().min(0).default(8 * 1024 * 1024),
  cacheMaxBytes: z.number().int().min(0).default(64 * 1024 * 1024),
  /** netascii transfers convert the whole file in memory; larger files are refused. */
  maxNetasciiBytes: z.number().int().min(0).default(16 * 1024 * 1024),
  /**
   * 'auto': streamed files (above cacheMaxFileBytes, octet) go through the native data path when its addon
   * loads and fewer than maxNativeTransfers run natively; everything else through the JS one (small
   * files from the in-memory cache); 'js': always the JS data path.
   */
  dataPath: z.enum(['auto', 'js']).default('auto'),
  /** Concurrent native transfers (one thread each); beyond this, transfers use the JS data path. */
  maxNativeTransfers: z.number().int().min(0).max(1024).default(64),
  /**
   * Native data path, lock-step transfers: microseconds to spin on recv before sleeping in poll (see
   * docs/decisions.md); only as many transfers spin at once as there are cores but one.
   */
  nativeSpinUs: z.number().int().min(0).max(10_000).default(50),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).info === 'function').optional(),
  onTransfer: z.custom<(e: TftpTransferEvent) => void>((v) => typeof v === 'function').optional(),
});

export type TftpServerOptions = z.input<typeof OptionsSchema>;
type Resolved = z.output<typeof OptionsSchema>;

interface Session {
  file: string;
  started: number;
  transfer?: { abort(reason: string, notify?: boolean): void };
  socket?: Socket;
  aborted: boolean;
}

const msSince = (t: number) => Math.round((performance.now() - t) * 1000) / 1000;

export class TftpServer {
  private readonly o: Resolved;
  private readonly log: Logger;
  private readonly cache: FileCache;
  private readonly sessions = new Map<string, Session>();
  private readonly closing = new Set<Promise<void>>();
  private main: Socket | undefined;
  private rootReal = '';
  private readonly data: DataPathChoice;
  private nativeActive = 0;
  /** Native transfers that busy-poll: at most one per core but one (left to the event loop). */
  private nativeSpinning = 0;
  private readonly maxSpinning = Math.max(1, availableParallelism() - 1);
  private readonly s: Omit<TftpStats, 'active' | 'cacheHits' | 'cacheMisses' | 'cacheBytes'> = {
    requests: 0,
    completed: 0,
    sizeProbes: 0,
    errors: 0,
    timeouts: 0,
    refused: 0,
    shed: 0,
    malformed: 0,
    duplicateRequests: 0,
    duplicateAcks: 0,
    packetsSent: 0,
    retransmits: 0,
    bytesSent: 0,
  };

  constructor(options: TftpServerOptions) {
    const parsed = OptionsSchema.safeParse(options);
    if (!parsed.success) throw new Error(`invalid TFTP server options: ${z.prettifyError(parsed.error)}`);
    this.o = parsed.data;
    this.log = this.o.logger ?? silentLogger;
    this.cache = new FileCache({ maxFileBytes: this.o.cacheMaxFileBytes, maxTotalBytes: this.o.cacheMaxBytes });
    this.data = selectDataPath(this.o.dataPath);
  }

  /** The data path streamed transfers use: 'native' (addon loaded) or 'js'. */
  get dataPath(): 'native' | 'js' {
    return this.data.path;
  }

  /** Bind the server port. Resolves with the bound address (port 0 picks a free port). */
  async start(): Promise<{ address: string; port: number }> {
    if (this.main) throw new Error('TFTP server already started');
    this.rootReal = await realRoot(this.o.root);
    const sock = createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: this.o.address, port: this.o.port, exclusive: true }, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    try {
      // A boot storm's RRQs arrive in bursts of thousands while the loop is busy: room for them in the kernel.
      sock.setRecvBufferSize(4 * 1024 * 1024);
    } catch {
      /* capped by net.core.rmem_max: the kernel's maximum applies */
    }
    sock.on('error', (err) => this.log.error({ err }, 'tftp server socket error'));
    sock.on('message', (msg, rinfo) => this.onRequest(msg, rinfo));
    this.main = sock;
    const addr = sock.address();
    if (this.data.path === 'js' && this.data.warning) this.log.warn({ reason: this.data.warning }, 'tftp native data path unavailable, using the JS data path');
    this.log.info({ address: addr.address, port: addr.port, root: this.rootReal, dataPath: this.data.path }, 'tftp server listening');
    return { address: addr.address, port: addr.port };
  }

  /** Stop accepting requests, abort running transfers (clients get an error packet), release sockets. */
  async stop(): Promise<void> {
    const main = this.main;
    this.main = undefined;
    if (main) await new Promise<void>((resolve) => main.close(() => resolve()));
    for (const s of this.sessions.values()) {
      s.aborted = true;
      s.transfer?.abort('server stopping');
    }
    await Promise.allSettled([...this.closing]);
  }

  address(): { address: string; port: number } | null {
    if (!this.main) return null;
    const a = this.main.address();
    return { address: a.address, port: a.port };
  }

  stats(): TftpStats {
    return {
      ...this.s,
      active: this.sessions.size,
      cacheHits: this.cache.hits,
      cacheMisses: this.cache.misses,
      cacheBytes: this.cache.bytes,
    };
  }

  private reply(rinfo: RemoteInfo, code: number, message: string): void {
    this.main?.send(encodeError(code, message), rinfo.port, rinfo.address);
    this.s.packetsSent++;
  }

  private emit(e: TftpTransferEvent): void {
    if (!this.o.onTransfer) return;
    try {
      this.o.onTransfer(e);
    } catch (err) {
      this.log.warn({ err }, 'tftp onTransfer callback threw');
    }
  }

  private refuse(rinfo: RemoteInfo, file: string, started: number, code: number, message: string, reason: string): void {
    this.s.refused++;
    this.reply(rinfo, code, message);
    const client = `${rinfo.address}:${rinfo.port}`;
    this.log.info({ client, file, reason }, 'tftp request refused');
    this.emit({ file, client, bytes: 0, durationMs: msSince(started), outcome: 'error', error: reason });
  }

  private onRequest(msg: Buffer, rinfo: RemoteInfo): void {
    if (rinfo.port === 0) return;
    const started = performance.now();
    const parsed = parsePacket(msg);
    if (!parsed.ok) {
      this.s.malformed++;
      this.log.debug({ client: `${rinfo.address}:${rinfo.port}`, reason: parsed.reason }, 'tftp malformed packet');
      // Answer what looks like a request or an unknown opcode; drop short junk and stray transfer packets.
      const op = parsed.opcode;
      if (op !== undefined && (op === Opcode.RRQ || op === Opcode.WRQ || op > Opcode.OACK || op === 0)) {
        this.reply(rinfo, ErrorCode.ILLEGAL_OPERATION, 'Illegal TFTP operation');
      }
      return;
    }
    const p = parsed.packet;
    if (p.op === Opcode.WRQ) {
      this.refuse(rinfo, p.filename, started, ErrorCode.ACCESS_VIOLATION, 'Access violation', 'write request refused (read-only server)');
      return;
    }
    if (p.op !== Opcode.RRQ) return; // DATA/ACK/ERROR/OACK on the server port: not ours
    this.s.requests++;
    if (p.mode !== 'octet' && p.mode !== 'netascii') {
      this.refuse(rinfo, p.filename, started, ErrorCode.ILLEGAL_OPERATION, 'Unsupported transfer mode', `unsupported mode ${p.mode}`);
      return;
    }
    const key = `${rinfo.address}:${rinfo.port}`;
    const existing = this.sessions.get(key);
    if (existing) {
      if (existing.file === p.filename) {
        this.s.duplicateRequests++;
        return; // retransmitted RRQ: the running transfer answers it
      }
      existing.aborted = true;
      existing.transfer?.abort('client started another request', false);
    }
    if (this.sessions.size >= this.o.maxTransfers) {
      // An error packet here would end the client's boot ("Server busy" is fatal to a PXE ROM); silence
      // makes it retransmit the RRQ after its timeout, by when transfers have finished.
      this.s.shed++;
      return;
    }
    const session: Session = { file: p.filename, started, aborted: false };
    this.sessions.set(key, session);
    const done = this.run(session, key, p, rinfo)
      .catch((err: Error) => {
        this.log.error({ err, client: key }, 'tftp transfer setup failed');
        if (this.sessions.get(key) === session) this.sessions.delete(key);
      })
      .finally(() => this.closing.delete(done));
    this.closing.add(done);
  }

  private release(session: Session, key: string): void {
    if (this.sessions.get(key) === session) this.sessions.delete(key);
  }

  private async openSource(path: string, stats: import('node:fs').Stats, netascii: boolean): Promise<ByteSource | string> {
    // Small files (iPXE binaries) stay on the JS path, from the in-memory cache: one native transfer of a
    // 1 MiB file is ~2x faster, but in a 1,000-machine boot storm 64 native threads took the CPU from the
    // event loop that also answers DHCP (TFTP p50 1.9 s → 7.2 s, 176 DHCP resends; docs/decisions.md).
    const cached = this.cache.get(path, stats);
    if (cached && !netascii) return new MemorySource(cached);
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      // The file changed between lookup and open (rename/symlink swap): treat as not found.
      if (st.ino !== stats.ino || st.dev !== stats.dev || !st.isFile()) {
        await fh.close();
        return 'file changed during lookup';
      }
      const small = this.cache.accepts(st.size);
      if (netascii || small) {
        if (netascii && st.size > this.o.maxNetasciiBytes) {
          await fh.close();
          return 'netascii file too large';
        }
        const bytes = cached ?? (await fh.readFile());
        await fh.close();
        if (!cached && bytes.length === st.size) this.cache.set(path, st, bytes);
        return new MemorySource(netascii ? toNetascii(bytes) : bytes);
      }
      return new FileSource(fh, st.size);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  private async run(session: Session, key: string, req: RequestPacket, rinfo: RemoteInfo): Promise<void> {
    const { started } = session;
    const resolved = await resolveRequestPath(this.rootReal, req.filename);
    if (session.aborted) return this.release(session, key);
    if (!resolved.ok) {
      this.release(session, key);
      this.refuse(rinfo, req.filename, started, resolved.code, resolved.message, resolved.reason);
      return;
    }
    let source: ByteSource | string;
    try {
      source = await this.openSource(resolved.path, resolved.stats, req.mode === 'netascii');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      source = code === 'EACCES' ? 'permission denied' : `open failed: ${code ?? (err as Error).message}`;
    }
    if (typeof source === 'string') {
      this.release(session, key);
      const access = source === 'permission denied';
      this.refuse(rinfo, req.filename, started, access ? ErrorCode.ACCESS_VIOLATION : ErrorCode.FILE_NOT_FOUND, access ? 'Access violation' : 'File not found', source);
      return;
    }
    if (session.aborted) {
      await source.close();
      return this.release(session, key);
    }
    const neg = negotiate(req.options, source.size, {
      maxBlksize: this.o.maxBlksize,
      maxWindowsize: this.o.maxWindowsize,
      defaultTimeoutMs: this.o.timeoutMs,
    });
    if (this.data.path === 'native' && source instanceof FileSource && this.nativeActive < this.o.maxNativeTransfers) {
      return this.runNative(session, key, req, rinfo, neg, source, this.data.addon);
    }

    let sock: Socket;
    try {
      sock = await this.openTransferSocket(rinfo);
    } catch (err) {
      await source.close();
      this.release(session, key);
      this.refuse(rinfo, req.filename, started, ErrorCode.NOT_DEFINED, 'Server busy', `transfer socket: ${(err as Error).message}`);
      return;
    }
    session.socket = sock;
    const src = source;
    let finished!: () => void;
    const ended = new Promise<void>((r) => (finished = r));
    const transfer = new ReadTransfer({
      source: src,
      blksize: neg.blksize,
      windowsize: neg.windowsize,
      timeoutMs: neg.timeoutMs,
      retries: this.o.retries,
      oack: neg.oack,
      send: (pkt) => {
        this.s.packetsSent++;
        sock.send(pkt);
      },
      onRetransmit: (n) => {
        this.s.retransmits += n;
      },
      onDone: (r) => {
        this.onTransferDone(session, key, req, rinfo, neg, r, 'js');
        // Close after the last send (an error packet) has been handed to the kernel.
        setImmediate(() => {
          try {
            sock.close();
          } catch {
            /* already closed */
          }
          src.close().finally(finished);
        });
      },
    });
    session.transfer = transfer;
    sock.on('message', (msg) => {
      const parsed = parsePacket(msg);
      if (!parsed.ok) {
        this.s.malformed++;
        return;
      }
      transfer.handle(parsed.packet);
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      // ICMP port unreachable on the connected socket: the client went away.
      transfer.abort(`socket error: ${err.code ?? err.message}`, false);
    });
    if (session.aborted) transfer.abort('aborted before start', false);
    else transfer.start();
    await ended;
  }

  /** The data phase on the addon's thread: it owns the transfer socket; JS keeps the file open until the end. */
  private async runNative(
    session: Session,
    key: string,
    req: RequestPacket,
    rinfo: RemoteInfo,
    neg: ReturnType<typeof negotiate>,
    src: FileSource,
    addon: Extract<DataPathChoice, { path: 'native' }>['addon'],
  ): Promise<void> {
    let finished!: () => void;
    const ended = new Promise<void>((r) => (finished = r));
    let transfer: NativeTransfer;
    // Lock-step only: that is where the wake-up per round trip dominates; windowed transfers meet their
    // target without it and spinning there competed with the client for CPU on a loaded machine.
    const spins = this.o.nativeSpinUs > 0 && neg.windowsize === 1 && this.nativeSpinning < this.maxSpinning;
    try {
      transfer = new NativeTransfer(
        addon,
        {
          address: this.o.address,
          clientAddress: rinfo.address,
          clientPort: rinfo.port,
          fileFd: src.fd,
          size: src.size,
          blksize: neg.blksize,
          windowsize: neg.windowsize,
          timeoutMs: neg.timeoutMs,
          retries: this.o.retries,
          spinUs: spins ? this.o.nativeSpinUs : 0,
          oack: neg.oack ? encodeOack(neg.oack) : null,
        },
        (r, raw: NativeResult) => {
          this.nativeActive--;
          if (spins) this.nativeSpinning--;
          this.s.packetsSent += raw.packetsSent;
          this.s.retransmits += raw.retransmits;
          this.s.malformed += raw.malformed;
          this.onTransferDone(session, key, req, rinfo, neg, r, 'native');
          src.close().finally(finished);
        },
      );
    } catch (err) {
      await src.close();
      this.release(session, key);
      this.refuse(rinfo, req.filename, session.started, ErrorCode.NOT_DEFINED, 'Server busy', `transfer socket: ${(err as Error).message}`);
      return;
    }
    this.nativeActive++;
    if (spins) this.nativeSpinning++;
    session.transfer = transfer;
    if (session.aborted) transfer.abort('aborted before start', false);
    await ended;
  }

  private openTransferSocket(rinfo: RemoteInfo): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const sock = createSocket({ type: 'udp4' });
      const fail = (err: Error) => {
        try {
          sock.close();
        } catch {
          /* not open */
        }
        reject(err);
      };
      sock.once('error', fail);
      sock.bind({ address: this.o.address, port: 0, exclusive: true }, () => {
        // Connected: the kernel drops datagrams from other TIDs and sends need no address lookup.
        sock.connect(rinfo.port, rinfo.address, () => {
          sock.off('error', fail);
          resolve(sock);
        });
      });
    });
  }

  private onTransferDone(
    session: Session,
    key: string,
    req: RequestPacket,
    rinfo: RemoteInfo,
    neg: { blksize: number; windowsize: number },
    r: TransferResult,
    dataPath: 'native' | 'js',
  ): void {
    this.release(session, key);
    this.s.bytesSent += r.bytes;
    this.s.duplicateAcks += r.duplicateAcks;
    const client = `${rinfo.address}:${rinfo.port}`;
    const durationMs = msSince(session.started);
    const fields = { client, file: req.filename, bytes: r.bytes, durationMs, blksize: neg.blksize, windowsize: neg.windowsize, retransmits: r.retransmits, dataPath };
    if (r.outcome === 'complete') {
      this.s.completed++;
      this.log.info(fields, 'tftp transfer complete');
    } else if (r.outcome === 'size-probe') {
      this.s.sizeProbes++;
      this.log.debug(fields, 'tftp size probe (client aborted after OACK)');
    } else {
      this.s.errors++;
      if (r.error === 'timeout') this.s.timeouts++;
      this.log.warn({ ...fields, error: r.error }, 'tftp transfer failed');
    }
    const event: TftpTransferEvent = { file: req.filename, client, bytes: r.bytes, durationMs, outcome: r.outcome, blksize: neg.blksize, windowsize: neg.windowsize, retransmits: r.retransmits, dataPath };
    if (r.error !== undefined) event.error = r.error;
    this.emit(event);
  }
}
