/**
 * Lease allocation and persistence for the agent's DHCP server.
 *
 * - Allocation order: the MAC's reservation; the MAC's own current/previous address or pending offer; the
 *   requested address (option 50) if free; a never-used address of the range; finally the free address
 *   whose last holder left it longest ago (expired/released leases keep an affinity to their holder).
 * - An address bound to a client and not expired, reserved for another MAC, held for another client's
 *   pending offer, or quarantined after a DECLINE is never offered.
 * - Offers are synchronous and hold the address for `offerHoldMs`, so parallel DISCOVERs never collide.
 * - Every state change is journaled; `bind()` resolves only after its record is fsync'd (ACK after durable).
 *   The journal lingers briefly before a small batch (LEASE_JOURNAL_LINGER): under a stream of REQUESTs one
 *   fdatasync covers up to 32 leases instead of a few, and no ACK waits more than 2 ms longer for it.
 */
import { z } from 'zod';
import { silentLogger, type Logger } from '../../shared/log/logger.js';
import type { LeaseEvent, Reservation, Subnet } from '../../shared/dhcp/config.js';
import { inCidr, intToIp, ipToInt, parseCidr } from '../../shared/dhcp/ip.js';
import { Journal } from '../../shared/fs/journal.js';

export const LeaseRecordSchema = z.object({
  mac: z.string(),
  address: z.string(),
  subnet: z.string(),
  hostname: z.string().optional(),
  state: z.enum(['bound', 'released', 'expired', 'declined']),
  /** ms since epoch: end of the lease, or of the quarantine for `declined`. */
  expiresAt: z.number(),
  /** ms since epoch of the last change (orders free addresses for reuse: oldest first). */
  updatedAt: z.number(),
});
export type LeaseRecord = z.infer<typeof LeaseRecordSchema>;

export interface LeaseStoreOptions {
  /** Journal file; without it leases live in memory only. */
  file?: string;
  logger?: Logger;
  now?: () => number;
  onEvent?: (e: LeaseEvent) => void;
  offerHoldMs?: number;
  declineQuarantineMs?: number;
  /** Compact once the journal holds this many more records than there are live leases. */
  compactSlack?: number;
  /** The journal's linger before a small batch (default LEASE_JOURNAL_LINGER); false: none. */
  journalLinger?: { records: number; ms: number } | false;
  /** Zeros kept written past the journal's last record (default LEASE_JOURNAL_PREALLOCATE); false: none. */
  journalPreallocate?: number | false;
}

/** Up to 32 leases or 2 ms per fdatasync (see the module comment and docs/decisions.md). */
export const LEASE_JOURNAL_LINGER = { records: 32, ms: 2 } as const;
/**
 * The lease journal keeps 1 MiB of zeros written ahead of its records (~5,000 leases): an ACK's fdatasync
 * then writes data only, not the file's size and extents (shared/fs/journal.ts `preallocate`), which on a
 * busy disk is the metadata commit the ACK waited for.
 */
export const LEASE_JOURNAL_PREALLOCATE = 1024 * 1024;

export interface AllocationContext {
  subnet: Subnet;
  mac: string;
  requested?: string;
  reservations: Reservation[];
  /** Addresses never to hand out (the server's own, the gateway). */
  exclude?: string[];
}

export type OfferResult =
  | { ok: true; address: string; reserved: boolean; hostname?: string }
  | { ok: false; reason: 'exhausted' | 'reserved_in_use' | 'reservations_only' };

export type BindResult = { ok: true; lease: LeaseRecord } | { ok: false; reason: string };

interface Hold {
  mac: string;
  subnet: string;
  until: number;
}

const key = (subnet: string, mac: string) => `${subnet}|${mac}`;

export class LeaseStore {
  private byAddress = new Map<string, LeaseRecord>();
  private byMac = new Map<string, string>();
  private holds = new Map<string, Hold>();
  private holdByMac = new Map<string, string>();
  private cursor = new Map<string, number>();
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly offerHoldMs: number;
  private readonly declineQuarantineMs: number;
  private readonly compactSlack: number;
  private compacting = false;

  private constructor(
    private readonly journal: Journal<LeaseRecord> | undefined,
    private readonly opts: LeaseStoreOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger ?? silentLogger;
    this.offerHoldMs = opts.offerHoldMs ?? 30_000;
    this.declineQuarantineMs = opts.declineQuarantineMs ?? 600_000;
    this.compactSlack = opts.compactSlack ?? 10_000;
  }

  static async open(opts: LeaseStoreOptions = {}): Promise<LeaseStore> {
    if (!opts.file) return new LeaseStore(undefined, opts);
    // A corrupt line is salvaged, not fatal: DHCP must keep serving the rack (docs/decisions.md).
    const { journal, records, tornBytes, corrupt } = await Journal.open<LeaseRecord>(opts.file, {
      parse: (v) => LeaseRecordSchema.parse(v),
      corrupt: 'salvage',
      logger: opts.logger,
      ...(opts.journalLinger === false ? {} : { linger: opts.journalLinger ?? LEASE_JOURNAL_LINGER }),
      ...(opts.journalPreallocate === false ? {} : { preallocate: opts.journalPreallocate ?? LEASE_JOURNAL_PREALLOCATE }),
    });
    const store = new LeaseStore(journal, opts);
    for (const r of records) store.apply(r);
    store.logger.info({ file: opts.file, leases: store.byAddress.size, tornBytes, corrupt: corrupt.length }, 'leases loaded');
    return store;
  }

  /** The record for an address (any state). */
  get(address: string): LeaseRecord | undefined {
    return this.byAddress.get(address);
  }

  /** The MAC's most recent record in a subnet. */
  forMac(subnet: string, mac: string): LeaseRecord | undefined {
    const a = this.byMac.get(key(subnet, mac));
    return a ? this.byAddress.get(a) : undefined;
  }

  /** Every record, with bound leases past their end reported as expired. */
  all(): LeaseRecord[] {
    const now = this.now();
    return [...this.byAddress.values()].map((r) => (r.state === 'bound' && r.expiresAt <= now ? { ...r, state: 'expired' as const } : { ...r }));
  }

  /** True when `address` is bound to `mac` and not expired. */
  isBoundTo(address: string, mac: string): boolean {
    const r = this.byAddress.get(address);
    return !!r && r.mac === mac && r.state === 'bound' && r.expiresAt > this.now();
  }

  /**
   * Pick an address for a DISCOVER and hold it for the offer. Synchronous: no two callers can get the same
   * address.
   */
  offer(ctx: AllocationContext): OfferResult {
    const now = this.now();
    const cidr = ctx.subnet.cidr;
    const res = this.reservationFor(ctx);
    const choose = (address: string, reserved: boolean): OfferResult => {
      this.hold(cidr, ctx.mac, address, now);
      return reserved ? { ok: true, address, reserved, ...(res?.hostname ? { hostname: res.hostname } : {}) } : { ok: true, address, reserved };
    };
    if (res) {
      return this.usable(res.address, ctx, now, false) ? choose(res.address, true) : { ok: false, reason: 'reserved_in_use' };
    }
    if (ctx.subnet.reservationsOnly) return { ok: false, reason: 'reservations_only' };

    const held = this.holdByMac.get(key(cidr, ctx.mac));
    if (held && this.inRange(held, ctx.subnet) && this.usable(held, ctx, now, false)) return choose(held, false);
    const own = this.byMac.get(key(cidr, ctx.mac));
    if (own && this.inRange(own, ctx.subnet) && this.usable(own, ctx, now, false)) return choose(own, false);
    if (ctx.requested && this.inRange(ctx.requested, ctx.subnet) && this.usable(ctx.requested, ctx, now, false)) return choose(ctx.requested, false);

    const start = ipToInt(ctx.subnet.range.start);
    const end = ipToInt(ctx.subnet.range.end);
    const n = end - start + 1;
    const from = this.cursor.get(cidr) ?? 0;
    for (let k = 0; k < n; k++) {
      const i = (from + k) % n;
      const a = intToIp(start + i);
      if (!this.byAddress.has(a) && this.usable(a, ctx, now, false)) {
        this.cursor.set(cidr, (i + 1) % n);
        return choose(a, false);
      }
    }
    // Last resort: addresses other clients left (released/expired), oldest first.
    let best: LeaseRecord | undefined;
    for (const r of this.byAddress.values()) {
      if (r.subnet !== cidr || !this.inRange(r.address, ctx.subnet)) continue;
      if (!this.usable(r.address, ctx, now, true)) continue;
      if (!best || r.updatedAt < best.updatedAt) best = r;
    }
    if (best) return choose(best.address, false);
    return { ok: false, reason: 'exhausted' };
  }

  /** Forget a pending offer (the client chose another server). */
  dropOffer(subnet: string, mac: string): void {
    const a = this.holdByMac.get(key(subnet, mac));
    if (a !== undefined) {
      this.holdByMac.delete(key(subnet, mac));
      if (this.holds.get(a)?.mac === mac) this.holds.delete(a);
    }
  }

  /**
   * Whether `address` may be bound to the MAC now (REQUEST). Allowed: the MAC's own record, a free address
   * nobody else holds, or a quarantine that has ended; never another client's address, even an expired one.
   */
  canBind(ctx: AllocationContext & { address: string }): { ok: true } | { ok: false; reason: string } {
    const now = this.now();
    if (!inCidr(ctx.address, ctx.subnet.cidr)) return { ok: false, reason: 'address not in subnet' };
    const res = this.reservationFor(ctx);
    if (res && res.address !== ctx.address) return { ok: false, reason: `${ctx.mac} is reserved ${res.address}` };
    if (!res && ctx.subnet.reservationsOnly) return { ok: false, reason: 'reservations-only subnet' };
    if (!res && !this.inRange(ctx.address, ctx.subnet) && this.byAddress.get(ctx.address)?.mac !== ctx.mac) return { ok: false, reason: 'address outside the range' };
    if (!this.usable(ctx.address, ctx, now, false)) return { ok: false, reason: 'address in use' };
    return { ok: true };
  }

  /** Bind (ACK). Resolves after the record is durable. */
  async bind(ctx: AllocationContext & { address: string; hostname?: string; leaseTimeSec: number }): Promise<BindResult> {
    const check = this.canBind(ctx);
    if (!check.ok) return check;
    const now = this.now();
    const cidr = ctx.subnet.cidr;
    const writes: LeaseRecord[] = [];
    const prev = this.forMac(cidr, ctx.mac);
    if (prev && prev.address !== ctx.address && prev.state === 'bound') {
      writes.push({ ...prev, state: 'released', expiresAt: now, updatedAt: now });
    }
    const lease: LeaseRecord = {
      mac: ctx.mac,
      address: ctx.address,
      subnet: cidr,
      ...(ctx.hostname ? { hostname: ctx.hostname } : {}),
      state: 'bound',
      expiresAt: now + ctx.leaseTimeSec * 1000,
      updatedAt: now,
    };
    writes.push(lease);
    this.dropOffer(cidr, ctx.mac);
    await this.applyDurably(writes);
    this.emit('lease', lease);
    return { ok: true, lease: { ...lease } };
  }

  /** RELEASE: only the holder can release. */
  async release(subnet: string, mac: string, address: string): Promise<boolean> {
    const r = this.byAddress.get(address);
    if (!r || r.mac !== mac || r.subnet !== subnet || r.state !== 'bound') return false;
    const now = this.now();
    const rec: LeaseRecord = { ...r, state: 'released', expiresAt: now, updatedAt: now };
    await this.applyDurably([rec]);
    this.emit('release', rec);
    return true;
  }

  /** DECLINE: the client found the address in use; nobody gets it for the quarantine period. */
  async decline(subnet: string, mac: string, address: string): Promise<boolean> {
    if (!inCidr(address, subnet)) return false;
    const cur = this.byAddress.get(address);
    // A client may only decline an address it was offered or holds.
    const offered = this.holds.get(address)?.mac === mac;
    if (!offered && !(cur && cur.mac === mac)) return false;
    const now = this.now();
    const rec: LeaseRecord = { mac, address, subnet, state: 'declined', expiresAt: now + this.declineQuarantineMs, updatedAt: now };
    this.dropOffer(subnet, mac);
    await this.applyDurably([rec]);
    // A declined address keeps no affinity to the client that declined it.
    if (this.byMac.get(key(subnet, mac)) === address) this.byMac.delete(key(subnet, mac));
    this.emit('decline', rec);
    return true;
  }

  /** Mark bound leases past their end as expired; emits `expire` events. Returns how many expired. */
  async sweep(): Promise<number> {
    const now = this.now();
    const expired: LeaseRecord[] = [];
    for (const r of this.byAddress.values()) {
      if (r.state === 'bound' && r.expiresAt <= now) expired.push({ ...r, state: 'expired', updatedAt: r.expiresAt });
    }
    for (const [a, h] of this.holds) {
      if (h.until <= now) {
        this.holds.delete(a);
        if (this.holdByMac.get(key(h.subnet, h.mac)) === a) this.holdByMac.delete(key(h.subnet, h.mac));
      }
    }
    if (expired.length === 0) return 0;
    await this.applyDurably(expired);
    for (const r of expired) this.emit('expire', r);
    return expired.length;
  }

  stats(): { leases: number; bound: number; offers: number; declined: number; journal?: ReturnType<Journal<LeaseRecord>['stats']> } {
    const now = this.now();
    let bound = 0;
    let declined = 0;
    for (const r of this.byAddress.values()) {
      if (r.state === 'bound' && r.expiresAt > now) bound++;
      if (r.state === 'declined' && r.expiresAt > now) declined++;
    }
    return { leases: this.byAddress.size, bound, offers: this.holds.size, declined, ...(this.journal ? { journal: this.journal.stats() } : {}) };
  }

  /** Force a compaction now (also happens automatically). */
  async compact(): Promise<void> {
    if (!this.journal) return;
    await this.journal.compact(() => this.snapshot());
  }

  async close(): Promise<void> {
    await this.journal?.close();
  }

  // ---- internals ----------------------------------------------------------------------------------------

  private reservationFor(ctx: AllocationContext): Reservation | undefined {
    return ctx.reservations.find((r) => r.mac === ctx.mac && inCidr(r.address, ctx.subnet.cidr));
  }

  private inRange(address: string, subnet: Subnet): boolean {
    const n = ipToInt(address);
    return n >= ipToInt(subnet.range.start) && n <= ipToInt(subnet.range.end);
  }

  /**
   * Whether the MAC may get `address`. `takeAffinity`: also accept addresses another client released or let
   * expire (last-resort reuse).
   */
  private usable(address: string, ctx: AllocationContext, now: number, takeAffinity: boolean): boolean {
    const c = parseCidr(ctx.subnet.cidr);
    const n = ipToInt(address);
    if (n === c.network || n === (c.network | ~c.mask) >>> 0) return false; // network, broadcast
    if (ctx.exclude?.includes(address) || address === ctx.subnet.gateway) return false;
    if (ctx.reservations.some((r) => r.address === address && r.mac !== ctx.mac)) return false;
    const h = this.holds.get(address);
    if (h && h.mac !== ctx.mac && h.until > now) return false;
    const r = this.byAddress.get(address);
    if (!r) return true;
    if (r.state === 'declined') return r.expiresAt <= now;
    if (r.mac === ctx.mac) return true;
    if (r.state === 'bound' && r.expiresAt > now) return false;
    return takeAffinity;
  }

  private hold(subnet: string, mac: string, address: string, now: number): void {
    const prev = this.holdByMac.get(key(subnet, mac));
    if (prev !== undefined && prev !== address && this.holds.get(prev)?.mac === mac) this.holds.delete(prev);
    this.holds.set(address, { mac, subnet, until: now + this.offerHoldMs });
    this.holdByMac.set(key(subnet, mac), address);
  }

  private apply(r: LeaseRecord): void {
    const old = this.byAddress.get(r.address);
    if (old && old.mac !== r.mac && this.byMac.get(key(old.subnet, old.mac)) === r.address) this.byMac.delete(key(old.subnet, old.mac));
    this.byAddress.set(r.address, r);
    if (r.state !== 'declined') this.byMac.set(key(r.subnet, r.mac), r.address);
  }

  private snapshot(): LeaseRecord[] {
    const now = this.now();
    return [...this.byAddress.values()].filter((r) => !(r.state === 'declined' && r.expiresAt <= now));
  }

  /**
   * Applies the records and resolves once they are durable. If the journal refuses them (a full disk, an
   * I/O error: a StorageError), they are rolled back, so no lease that was never on disk stays in memory
   * (or reaches a later compaction), and the error is rethrown: the caller answers nothing (no ACK).
   */
  private async applyDurably(records: LeaseRecord[]): Promise<void> {
    const before = records.map((r) => this.byAddress.get(r.address));
    for (const r of records) this.apply(r);
    try {
      await this.persist(records);
    } catch (e) {
      for (let i = records.length - 1; i >= 0; i--) {
        const r = records[i];
        if (this.byAddress.get(r.address) !== r) continue; // changed since by a later write: leave it
        const prev = before[i];
        this.byAddress.delete(r.address);
        if (this.byMac.get(key(r.subnet, r.mac)) === r.address) this.byMac.delete(key(r.subnet, r.mac));
        if (prev) this.apply(prev);
      }
      throw e;
    }
  }

  private async persist(records: LeaseRecord[]): Promise<void> {
    if (!this.journal) return;
    await Promise.all(records.map((r) => this.journal!.append(r)));
    if (!this.compacting && this.journal.size > this.byAddress.size + this.compactSlack) {
      this.compacting = true;
      this.journal
        .compact(() => this.snapshot())
        .catch((e) => this.logger.error({ err: e }, 'lease journal compaction failed'))
        .finally(() => (this.compacting = false));
    }
  }

  private emit(type: LeaseEvent['type'], r: LeaseRecord): void {
    if (!this.opts.onEvent) return;
    try {
      this.opts.onEvent({
        type,
        mac: r.mac,
        address: r.address,
        ...(r.hostname ? { hostname: r.hostname } : {}),
        subnet: r.subnet,
        expiresAt: new Date(r.expiresAt).toISOString(),
      });
    } catch (e) {
      this.logger.error({ err: e }, 'lease event callback threw');
    }
  }
}
