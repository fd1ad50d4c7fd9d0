import { guarded } from '../../shared/util/guarded.js';
import { EventEmitter } from 'node:events';
import type { MemberRegister, MemberStatus, Service, ServiceMember, WaitResult } from '../../shared/api/services.js';
import { parseDuration } from '../../shared/util/duration.js';
import { silentLogger, type Logger } from '../../shared/log/logger.js';
import { ConflictError, InvalidError, NotFoundError } from '../../shared/errors/domain-errors.js';
import { newId } from '../auth/tokens.js';
import type { CollectionSpec, Doc, Store, WriteOp } from '../store/types.js';
import type { Change } from '../store/change-feed.js';
import { retryStale } from '../store/stale-write.js';

export const SERVICES = 'services';
export const servicesCollection: CollectionSpec = { name: SERVICES, unique: [{ field: 'name', values: (d: Doc) => [String(d.name)] }] };

/** Blocking queries: default and maximum wait (Consul's), and the jitter added (up to wait/16). */
export const DEFAULT_WAIT_MS = 5 * 60_000;
export const MAX_WAIT_MS = 10 * 60_000;

export interface RegistryOptions {
  /** Clock (ms since epoch); tests pass a fake one and call `sweep()` themselves. */
  now?: () => number;
  /** How often TTLs and deregister-after are checked (ms). Default 250. */
  sweepMs?: number;
  logger?: Logger;
  random?: () => number;
}

/** What lives only in memory: heartbeat deadlines and the last health output between status changes. */
interface Runtime {
  deadline?: number;
  note?: string;
  lastHeartbeatAt?: number;
}

const rk = (service: string, member: string) => `${service}\0${member}`;

/** What a replica tells the others when a member heartbeats (ReplicaMessages; not stored). */
const HEARTBEAT = 'service-heartbeat';
interface HeartbeatMessage {
  s: string;
  m: string;
  at: number;
  note?: string;
}
/** A note is sent to the other replicas up to this many characters (a message has a size limit). */
const NOTE_SENT_CHARS = 1024;

/**
 * The service registry. Services (with their members embedded) are documents in the store; a write
 * happens when something an observer can act on changes: registration, deregistration, a status
 * change, a TTL lapse, removal after deregister-after. A heartbeat that leaves the status as it was
 * only moves the member's deadline in memory (no fsync), so thousands of members heartbeating cost
 * no disk I/O. After a restart every TTL member gets a fresh TTL before it can lapse.
 *
 * Every stored change takes the next value of a monotonic index (persisted as the service's
 * `modifyIndex`; on start the counter resumes at the highest stored one), which blocking queries
 * compare against, as Consul's `X-Consul-Index`.
 */
export class ServiceRegistry {
  private readonly services = new Map<string, Service>();
  private readonly runtime = new Map<string, Runtime>();
  private readonly events = new EventEmitter();
  private index = 0;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly offRemote: () => void;
  private readonly offPeers: (() => void)[];

  constructor(
    private readonly store: Store,
    private readonly opts: RegistryOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.logger = opts.logger ?? silentLogger;
    this.events.setMaxListeners(0);
    const now = this.now();
    for (const s of store.list<Service & Doc>(SERVICES).items) {
      this.services.set(s.name, s);
      this.index = Math.max(this.index, s.modifyIndex ?? 0);
      for (const m of s.members) this.runtime.set(rk(s.name, m.id), { deadline: m.ttl ? now + parseDuration(m.ttl) : undefined, note: m.note });
    }
    this.offRemote = store.changes.on((c) => this.followRemote(c));
    this.offPeers = [store.peers.on(HEARTBEAT, (p) => this.followHeartbeat(p)), store.peers.onGap(() => this.freshDeadlines())];
  }

  /**
   * Another replica received a heartbeat: the member's deadline moves here too (from now: the message
   * took milliseconds), so every replica agrees on when its TTL lapses. Only the replica holding the
   * sweep lock (store.exclusive) writes the lapse.
   */
  private followHeartbeat(p: unknown): void {
    const hb = p as Partial<HeartbeatMessage> | null;
    if (!hb || typeof hb.s !== 'string' || typeof hb.m !== 'string' || typeof hb.at !== 'number') return;
    const m = this.services.get(hb.s)?.members.find((x) => x.id === hb.m);
    if (!m) return;
    const rt = this.runtime.get(rk(hb.s, hb.m)) ?? {};
    rt.deadline = m.ttl ? this.now() + parseDuration(m.ttl) : undefined;
    rt.lastHeartbeatAt = hb.at;
    rt.note = typeof hb.note === 'string' ? hb.note : undefined;
    this.runtime.set(rk(hb.s, hb.m), rt);
  }

  /** This replica may have missed heartbeats: every TTL member gets a fresh TTL (as after a restart). */
  private freshDeadlines(): void {
    const now = this.now();
    for (const s of this.services.values()) {
      for (const m of s.members) {
        const rt = this.runtime.get(rk(s.name, m.id));
        if (rt && m.ttl) rt.deadline = now + parseDuration(m.ttl);
      }
    }
  }

  /**
   * Another central replica changed a service (a store shared by replicas replays it here): the map,
   * the index and the blocking queries follow, as for a local write. Its new members get a fresh TTL.
   */
  private followRemote(c: Change): void {
    if (!c.remote || c.collection !== SERVICES) return;
    const before = c.before as Service | undefined;
    const s = c.doc as Service | undefined;
    if (before && (!s || before.name !== s.name)) {
      this.services.delete(before.name);
      for (const m of before.members) if (!s?.members.some((x) => x.id === m.id)) this.runtime.delete(rk(before.name, m.id));
      this.events.emit(before.name);
    }
    this.index = Math.max(this.index + 1, s?.modifyIndex ?? 0);
    if (s) {
      const now = this.now();
      this.services.set(s.name, s);
      for (const m of s.members) if (!this.runtime.has(rk(s.name, m.id))) this.runtime.set(rk(s.name, m.id), { deadline: m.ttl ? now + parseDuration(m.ttl) : undefined, note: m.note });
      this.events.emit(s.name);
    }
    this.events.emit('*');
  }

  /** Starts the TTL sweeper. */
  start(): void {
    if (this.timer) return;
    this.stopped = false;
    this.timer = setInterval(guarded('service TTL sweep', (_w, e) => this.logger.error({ err: e }, 'service TTL sweep failed'), () => this.sweep()), this.opts.sweepMs ?? 250);
    this.timer.unref();
  }

  /** Stops the sweeper and wakes every blocking query so the server can close. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.offRemote();
    for (const off of this.offPeers) off();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.events.emit('stop');
    await this.queue.catch(() => undefined);
  }

  /** True once stop() ran: blocking queries answer at once (and routes close the connection). */
  get isStopped(): boolean {
    return this.stopped;
  }

  currentIndex(): number {
    return this.index;
  }

  // ---- reads (stored state + in-memory heartbeat data)

  private view(s: Service): Service {
    return {
      ...s,
      members: s.members.map((m) => {
        const rt = this.runtime.get(rk(s.name, m.id));
        const out: ServiceMember = { ...m };
        if (rt?.note !== undefined) out.note = rt.note;
        if (rt?.lastHeartbeatAt !== undefined) out.lastHeartbeatAt = new Date(rt.lastHeartbeatAt).toISOString();
        return out;
      }),
    };
  }

  get(name: string): Service | undefined {
    const s = this.services.get(name);
    return s ? this.view(s) : undefined;
  }

  list(): Service[] {
    return [...this.services.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((s) => this.view(s));
  }

  /** Members registered for a machine (for the agent hub: which health it should report). */
  membersOfMachine(machine: string): { service: string; member: ServiceMember }[] {
    const out: { service: string; member: ServiceMember }[] = [];
    for (const s of this.services.values()) for (const m of s.members) if (m.machine === machine) out.push({ service: s.name, member: m });
    return out;
  }

  // ---- writes (serialised; each is durable before it resolves, then announced)

  /** One write at a time; one another replica's write beat (a stale write) is built again on it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const once = () => retryStale(fn);
    const run = this.queue.then(once, once);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async persist(changed: Service[], removed: Service[] = []): Promise<void> {
    const ops: WriteOp[] = [];
    for (const s of changed) {
      s.modifyIndex = ++this.index;
      ops.push({ type: 'put', collection: SERVICES, doc: s as unknown as Doc });
    }
    for (const s of removed) {
      ++this.index;
      ops.push({ type: 'delete', collection: SERVICES, id: s.id });
    }
    // The in-memory map changes only once the write is durable (a failed commit leaves it as stored).
    await this.store.commit(ops);
    for (const s of changed) {
      this.services.set(s.name, s);
      this.events.emit(s.name);
    }
    for (const s of removed) {
      this.services.delete(s.name);
      for (const m of s.members) this.runtime.delete(rk(s.name, m.id));
      this.events.emit(s.name);
    }
    this.events.emit('*');
  }

  private fresh(name: string, input: { description?: string; tags?: string[] } = {}): Service {
    const now = new Date(this.now()).toISOString();
    return { id: newId(), name, ...(input.description ? { description: input.description } : {}), tags: input.tags ?? [], members: [], modifyIndex: 0, createdAt: now, updatedAt: now };
  }

  create(input: { name: string; description?: string; tags?: string[] }): Promise<Service> {
    return this.serial(async () => {
      if (this.services.has(input.name)) throw new ConflictError(`service "${input.name}" already exists`, [{ path: 'name', message: `"${input.name}" is already in use` }]);
      const s = this.fresh(input.name, input);
      await this.persist([s]);
      return this.view(s);
    });
  }

  delete(name: string): Promise<void> {
    return this.serial(async () => {
      const s = this.services.get(name);
      if (!s) throw new NotFoundError(`service "${name}" not found`);
      await this.persist([], [s]);
    });
  }

  /** Adds or replaces a member (creating the service if needed). */
  register(name: string, input: MemberRegister, machineAddress?: (machine: string) => string | undefined | null): Promise<{ service: Service; member: ServiceMember; created: boolean }> {
    return this.serial(async () => {
      let address = input.address;
      if (input.machine && machineAddress) {
        const a = machineAddress(input.machine);
        if (a === null) throw new InvalidError(`machine "${input.machine}" does not exist`, [{ path: 'machine', message: 'unknown machine' }]);
        address ??= a;
      }
      if (!address) throw new InvalidError('address is required (or a machine that has one)', [{ path: 'address', message: 'required' }]);
      const id = input.id ?? `${input.machine ?? address}-${input.port}`;
      const nowMs = this.now();
      const now = new Date(nowMs).toISOString();
      const cur = this.services.get(name);
      const s: Service = cur ? { ...cur, members: [...cur.members], updatedAt: now } : this.fresh(name);
      const i = s.members.findIndex((m) => m.id === id);
      const prev = i >= 0 ? s.members[i] : undefined;
      const member: ServiceMember = {
        id,
        ...(input.machine ? { machine: input.machine } : {}),
        address,
        port: input.port,
        tags: input.tags ?? [],
        meta: input.meta ?? {},
        status: input.status ?? 'critical',
        ...(input.note !== undefined ? { note: input.note } : {}),
        ...(input.ttl ? { ttl: input.ttl } : {}),
        ...(input.deregisterCriticalAfter ? { deregisterCriticalAfter: input.deregisterCriticalAfter } : {}),
        statusSince: prev && prev.status === (input.status ?? 'critical') ? prev.statusSince : now,
        registeredAt: prev?.registeredAt ?? now,
      };
      if (i >= 0) s.members[i] = member;
      else s.members.push(member);
      s.members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      await this.persist([s]);
      this.runtime.set(rk(name, id), { deadline: member.ttl ? nowMs + parseDuration(member.ttl) : undefined, note: member.note });
      return { service: this.view(s), member: this.view(s).members.find((m) => m.id === id)!, created: !prev };
    });
  }

  deregister(name: string, id: string): Promise<void> {
    return this.serial(async () => {
      const cur = this.services.get(name);
      if (!cur) throw new NotFoundError(`service "${name}" not found`);
      if (!cur.members.some((m) => m.id === id)) throw new NotFoundError(`member "${name}/${id}" not found`);
      await this.persist([{ ...cur, members: cur.members.filter((m) => m.id !== id), updatedAt: new Date(this.now()).toISOString() }]);
      this.runtime.delete(rk(name, id));
    });
  }

  /**
   * A TTL heartbeat (`pass|warn|fail`) or an agent's report: sets the status and restarts the TTL.
   * Written to the store only when the status changes.
   */
  async reportMemberStatus(service: string, member: string, status: MemberStatus, note?: string): Promise<ServiceMember> {
    const nowMs = this.now();
    const cur = this.services.get(service);
    if (!cur) throw new NotFoundError(`service "${service}" not found`);
    const m = cur.members.find((x) => x.id === member);
    if (!m) throw new NotFoundError(`member "${service}/${member}" not found`);
    const rt = this.runtime.get(rk(service, member)) ?? {};
    rt.deadline = m.ttl ? nowMs + parseDuration(m.ttl) : undefined;
    rt.lastHeartbeatAt = nowMs;
    rt.note = note; // each check's output replaces the last one (as Consul's TTL update)
    this.runtime.set(rk(service, member), rt);
    const told: HeartbeatMessage = { s: service, m: member, at: nowMs, ...(note !== undefined ? { note: note.slice(0, NOTE_SENT_CHARS) } : {}) };
    this.store.peers.send(HEARTBEAT, told);
    if (m.status !== status) {
      await this.serial(async () => {
        const latest = this.services.get(service);
        const lm = latest?.members.find((x) => x.id === member);
        if (!latest || !lm || lm.status === status) return;
        await this.persist([this.withStatus(latest, member, status, rt.note, nowMs)]);
      });
    }
    const after = this.get(service)?.members.find((x) => x.id === member);
    if (!after) throw new NotFoundError(`member "${service}/${member}" not found`);
    return after;
  }

  private withStatus(s: Service, id: string, status: MemberStatus, note: string | undefined, nowMs: number): Service {
    const now = new Date(nowMs).toISOString();
    return {
      ...s,
      updatedAt: now,
      members: s.members.map((m) => {
        if (m.id !== id) return m;
        const next: ServiceMember = { ...m, status, statusSince: now };
        if (note !== undefined) next.note = note;
        else delete next.note;
        return next;
      }),
    };
  }

  /**
   * Marks lapsed TTLs critical and removes members critical for longer than their deregister-after. One
   * commit, made by one replica at a time (the others see it replayed).
   */
  async sweep(): Promise<void> {
    const nowMs = this.now();
    // Cheap check first (no queueing when nothing is due).
    let due = false;
    for (const s of this.services.values()) {
      for (const m of s.members) {
        const rt = this.runtime.get(rk(s.name, m.id));
        if ((m.status !== 'critical' && rt?.deadline !== undefined && nowMs >= rt.deadline) || (m.status === 'critical' && m.deregisterCriticalAfter && nowMs - Date.parse(m.statusSince) >= parseDuration(m.deregisterCriticalAfter))) {
          due = true;
          break;
        }
      }
      if (due) break;
    }
    if (!due) return;
    await this.store.exclusive('service-ttl-sweep', () => this.serial(async () => {
      const changed: Service[] = [];
      const now = this.now();
      const dropped: string[] = [];
      for (const s of this.services.values()) {
        let next: Service | null = null;
        for (const m of s.members) {
          const key = rk(s.name, m.id);
          const rt = this.runtime.get(key);
          if (m.status !== 'critical' && rt?.deadline !== undefined && now >= rt.deadline) {
            const note = `TTL expired: no heartbeat for ${m.ttl}`;
            rt.note = note;
            next = this.withStatus(next ?? s, m.id, 'critical', note, now);
            this.logger.info({ service: s.name, member: m.id }, 'service member TTL expired; now critical');
          } else if (m.status === 'critical' && m.deregisterCriticalAfter && now - Date.parse(m.statusSince) >= parseDuration(m.deregisterCriticalAfter)) {
            next = { ...(next ?? s), members: (next ?? s).members.filter((x) => x.id !== m.id), updatedAt: new Date(now).toISOString() };
            dropped.push(key);
            this.logger.info({ service: s.name, member: m.id, after: m.deregisterCriticalAfter }, 'service member critical too long; deregistered');
          }
        }
        if (next) changed.push(next);
      }
      if (changed.length > 0) await this.persist(changed);
      for (const k of dropped) this.runtime.delete(k);
    }));
  }

  // ---- blocking

  /** Effective wait for a blocking query: default 5 min, cap 10 min, plus up to wait/16 of jitter. */
  waitMs(wait?: string): number {
    const base = Math.min(wait ? parseDuration(wait) : DEFAULT_WAIT_MS, MAX_WAIT_MS);
    return base + Math.floor(this.random() * (base / 16));
  }

  /** Resolves when `ready()` holds (true), or at the timeout / abort / stop (ready() then). */
  waitUntil(event: string, ready: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (ready() || this.stopped || signal?.aborted) return Promise.resolve(ready());
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.events.off(event, check);
        this.events.off('stop', done);
        signal?.removeEventListener('abort', done);
        resolve(ready());
      };
      const check = () => {
        if (ready()) done();
      };
      const timer = setTimeout(done, timeoutMs);
      this.events.on(event, check);
      this.events.on('stop', done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Blocking read of one service: returns once its index passes `index` (or it is deleted), or at the timeout. */
  async watch(name: string, index: number | undefined, timeoutMs: number, signal?: AbortSignal): Promise<Service | undefined> {
    if (index !== undefined && index <= this.index) {
      const start = this.services.get(name);
      if (start) await this.waitUntil(name, () => (this.services.get(name)?.modifyIndex ?? Infinity) > index, timeoutMs, signal);
      // A missing service answers at once (404): nothing to watch.
    }
    return this.get(name);
  }

  /** Blocking list: returns once any service changes past `index`, or at the timeout. */
  async watchAll(index: number | undefined, timeoutMs: number, signal?: AbortSignal): Promise<Service[]> {
    if (index !== undefined && index <= this.index) await this.waitUntil('*', () => this.index > index, timeoutMs, signal);
    return this.list();
  }

  /** Passing members of a service, counting only those `visible` (a site-scoped caller's). */
  passing(name: string, visible: (m: ServiceMember) => boolean = () => true): number {
    return this.services.get(name)?.members.filter((m) => m.status === 'passing' && visible(m)).length ?? 0;
  }

  /**
   * Waits until the service has at least `wanted` passing members (the service may not exist yet),
   * counting and answering only the members `visible` to the caller.
   */
  async waitForPassing(name: string, wanted: number, timeoutMs: number, signal?: AbortSignal, visible: (m: ServiceMember) => boolean = () => true): Promise<WaitResult> {
    const satisfied = await this.waitUntil(name, () => this.passing(name, visible) >= wanted, timeoutMs, signal);
    return { service: name, wanted, passing: this.passing(name, visible), satisfied, index: this.index, members: (this.get(name)?.members ?? []).filter(visible) };
  }
}
