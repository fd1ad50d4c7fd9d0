import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { RecordLog } from '../state/record-log.js';
import { ForbiddenError } from '../../shared/errors/domain-errors.js';
import { ClaimRefusedError, UnauthenticatedError } from './errors.js';

/** How a boot token was claimed: by `POST /api/v1/boot/claim` (gets a credential) or by fetching a `/m/<token>/…` URL. */
export type ClaimVia = 'explicit' | 'url';

export interface BootSession {
  /** Public id (logs, events, task hand-outs); not a credential. */
  id: string;
  machine: string;
  mac: string;
  /** Source address of the claimer; URL clients are recognised by it for this boot token. */
  remote: string;
  /** sha256 of the boot token this session claimed. */
  token: string;
  /** sha256 of the session credential; null while only a URL client holds the session. */
  cred: string | null;
  at: number;
}

interface BootToken {
  h: string;
  mac: string;
  machine: string;
  exp: number;
}

type Rec =
  | ({ t: 'token' } & BootToken)
  | ({ t: 'session' } & BootSession)
  | { t: 'cred'; id: string; cred: string }
  | { t: 'handed'; id: string; task: string; machine: string; seq: number }
  | { t: 'floor'; machine: string; seq: number }
  | { t: 'secrets'; machine: string; gen: number; id: string };

export interface BootSessionLimits {
  /** Lifetime of an unclaimed boot token, ms (default 15 min). */
  tokenTtlMs?: number;
  /** Unclaimed tokens kept per MAC; minting more forgets the oldest (default 4). */
  tokensPerMac?: number;
  /** Unclaimed tokens and live sessions kept in all (default 20,000 each; the oldest go first). */
  maxTokens?: number;
  maxSessions?: number;
}

export interface ClaimResult {
  session: BootSession;
  /** The session credential: only on the claim that created it (never stored in clear). */
  credential?: string;
  /** The session this claim superseded (same machine, earlier boot), if any. */
  superseded?: BootSession;
  /** True when this request created or upgraded the session (false: a URL client's later request). */
  fresh: boolean;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const random = () => randomBytes(32).toString('base64url');
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Per-boot machine credentials (docs/decisions.md, "Per-boot machine credentials"). Each boot script
 * mints a random, single-use, short-lived **boot token** bound to the MAC and machine. The first client
 * to claim it holds that boot's **session**; any later claim is refused (ClaimRefusedError, raised as an
 * event by the caller). A new session for a machine supersedes the previous one. The store also records
 * which session was handed which runner task, the highest task sequence handed per machine (the runner's
 * replay floor across reboots) and which session received a deploy's secrets.
 *
 * Durable in the agent's record log (`boot-sessions.jsonl`, fsync'd before any answer); only hashes of
 * tokens and credentials are written, so the state directory holds nothing a client could present.
 */
export class BootSessions {
  private readonly log: RecordLog<Rec>;
  private readonly tokens = new Map<string, BootToken>();
  private readonly sessions = new Map<string, BootSession>();
  private readonly byToken = new Map<string, string>();
  private readonly byCred = new Map<string, string>();
  private readonly byMachine = new Map<string, string>();
  private readonly handed = new Map<string, { id: string; machine: string }>(); // task id → session id
  private readonly floors = new Map<string, number>();
  private readonly secrets = new Map<string, { gen: number; id: string }>();
  /** Claims being written (token hash → claimer's address): a concurrent second claim is refused, not raced. */
  private readonly claiming = new Map<string, string>();
  private appended = 0;
  private readonly ttl: number;
  private readonly perMac: number;
  private readonly maxTokens: number;
  private readonly maxSessions: number;

  constructor(
    path: string,
    limits: BootSessionLimits = {},
    private readonly now: () => number = Date.now,
  ) {
    this.log = new RecordLog<Rec>(path);
    this.ttl = limits.tokenTtlMs ?? 15 * 60_000;
    this.perMac = limits.tokensPerMac ?? 4;
    this.maxTokens = limits.maxTokens ?? 20_000;
    this.maxSessions = limits.maxSessions ?? 20_000;
  }

  get tokenTtlMs(): number {
    return this.ttl;
  }

  async open(): Promise<void> {
    for (const r of await this.log.open()) this.apply(r);
    this.compact();
  }

  close(): Promise<void> {
    return this.log.close();
  }

  /** A fresh boot token for this MAC/machine (rendered into the boot script). */
  async mint(mac: string, machine: string): Promise<string> {
    const token = random();
    await this.write({ t: 'token', h: sha(token), mac, machine, exp: this.now() + this.ttl });
    return token;
  }

  /**
   * Claims a boot token. The first claim creates the session (explicit claims get a credential). A URL
   * client's later requests from the same source address are the same session; an explicit claim from
   * the address of a URL-only session upgrades it with a credential once. Anything else: ClaimRefusedError.
   */
  async claim(token: string, remote: string, via: ClaimVia): Promise<ClaimResult> {
    if (!TOKEN_SHAPE.test(token)) throw new ForbiddenError('unknown or expired boot token');
    const h = sha(token);
    const claimedBy = this.byToken.get(h);
    const inflight = this.claiming.get(h);
    if (claimedBy) {
      const s = this.sessions.get(claimedBy)!;
      if (s.remote === remote && via === 'url') return { session: s, fresh: false };
      if (s.remote === remote && via === 'explicit' && s.cred === null && inflight === undefined) {
        const credential = random();
        await this.guarded(h, remote, () => this.write({ t: 'cred', id: s.id, cred: sha(credential) }));
        return { session: s, credential, fresh: true };
      }
      throw new ClaimRefusedError(s.machine, s.mac, inflight ?? s.remote);
    }
    const t = this.tokens.get(h);
    if (!t || t.exp <= this.now()) throw new ForbiddenError('unknown or expired boot token');
    if (inflight !== undefined) throw new ClaimRefusedError(t.machine, t.mac, inflight);
    const credential = via === 'explicit' ? random() : undefined;
    const session: BootSession = { id: randomBytes(9).toString('base64url'), machine: t.machine, mac: t.mac, remote, token: h, cred: credential ? sha(credential) : null, at: this.now() };
    const prevId = this.byMachine.get(t.machine);
    const superseded = prevId ? this.sessions.get(prevId) : undefined;
    await this.guarded(h, remote, () => this.write({ t: 'session', ...session }));
    return { session, ...(credential ? { credential } : {}), ...(superseded ? { superseded } : {}), fresh: true };
  }

  /** Runs a claim's write with the token reserved, so a concurrent claim sees it as taken. */
  private async guarded(h: string, remote: string, write: () => Promise<void>): Promise<void> {
    this.claiming.set(h, remote);
    try {
      await write();
    } finally {
      this.claiming.delete(h);
    }
  }

  /** The live session a credential belongs to, or UnauthenticatedError. */
  authenticate(credential: string | undefined): BootSession {
    if (!credential || credential.length > 128) throw new UnauthenticatedError();
    const id = this.byCred.get(sha(credential));
    const s = id ? this.sessions.get(id) : undefined;
    if (!s || !s.cred || !timingSafeEqual(Buffer.from(s.cred), Buffer.from(sha(credential)))) throw new UnauthenticatedError('unknown or superseded boot session');
    return s;
  }

  /** The session that claimed this boot token, if it is still live. */
  sessionOfToken(token: string): BootSession | undefined {
    const id = this.byToken.get(sha(token));
    return id ? this.sessions.get(id) : undefined;
  }

  /** The MAC a boot token was minted for (claimed or not), if the token is known. */
  macOf(token: string): string | undefined {
    if (!TOKEN_SHAPE.test(token)) return undefined;
    const h = sha(token);
    return this.tokens.get(h)?.mac ?? this.sessionOfToken(token)?.mac;
  }

  /** Records that a runner task went to this session (reports are accepted only from it). */
  async recordHanded(session: BootSession, task: string, seq: number): Promise<void> {
    await this.write({ t: 'handed', id: session.id, task, machine: session.machine, seq });
  }

  wasHandedTo(session: BootSession, task: string): boolean {
    return this.handed.get(task)?.id === session.id;
  }

  /** Highest task sequence this agent handed to any runner of the machine: a new boot refuses tasks at or below it. */
  seqFloor(machine: string): number {
    return this.floors.get(machine) ?? 0;
  }

  /** Which session received this machine's secrets for re-arm generation `gen`, if any. */
  secretsHolder(machine: string, gen: number): string | undefined {
    const s = this.secrets.get(machine);
    return s && s.gen === gen ? s.id : undefined;
  }

  /**
   * Makes `session` the holder of the machine's secrets for generation `gen`, unless another session
   * already is (returns false). Check and reservation are synchronous: two sessions racing for the same
   * secrets cannot both win. Durable before it resolves true.
   */
  async takeSecrets(machine: string, gen: number, session: BootSession): Promise<boolean> {
    const holder = this.secretsHolder(machine, gen);
    if (holder) return holder === session.id;
    const before = this.secrets.get(machine);
    this.secrets.set(machine, { gen, id: session.id });
    try {
      await this.log.append({ t: 'secrets', machine, gen, id: session.id });
    } catch (e) {
      if (before) this.secrets.set(machine, before);
      else this.secrets.delete(machine);
      throw e;
    }
    return true;
  }

  private async write(r: Rec): Promise<void> {
    await this.log.append(r);
    this.apply(r);
    if (++this.appended > 5000 && this.appended > 4 * (this.tokens.size + this.sessions.size + this.handed.size)) this.compact();
  }

  private apply(r: Rec): void {
    switch (r.t) {
      case 'token': {
        const { t: _, ...tok } = r;
        this.tokens.set(tok.h, tok);
        const mine = [...this.tokens.values()].filter((x) => x.mac === tok.mac);
        for (const old of mine.slice(0, Math.max(0, mine.length - this.perMac))) this.tokens.delete(old.h);
        while (this.tokens.size > this.maxTokens) this.tokens.delete(this.tokens.keys().next().value!);
        break;
      }
      case 'session': {
        const { t: _, ...s } = r;
        this.tokens.delete(s.token);
        const prev = this.byMachine.get(s.machine);
        if (prev) this.end(prev);
        this.sessions.set(s.id, s);
        this.byToken.set(s.token, s.id);
        this.byMachine.set(s.machine, s.id);
        if (s.cred) this.byCred.set(s.cred, s.id);
        while (this.sessions.size > this.maxSessions) this.end(this.sessions.keys().next().value!);
        break;
      }
      case 'cred': {
        const s = this.sessions.get(r.id);
        if (s) {
          s.cred = r.cred;
          this.byCred.set(r.cred, s.id);
        }
        break;
      }
      case 'handed':
        // Installed OSes (os:<task>, agent/http/os-credentials.ts) hold no boot session but take tasks too.
        if (this.sessions.has(r.id) || r.id.startsWith('os:')) this.handed.set(r.task, { id: r.id, machine: r.machine });
        this.floors.set(r.machine, Math.max(this.floors.get(r.machine) ?? 0, r.seq));
        break;
      case 'floor':
        this.floors.set(r.machine, Math.max(this.floors.get(r.machine) ?? 0, r.seq));
        break;
      case 'secrets':
        this.secrets.set(r.machine, { gen: r.gen, id: r.id });
        break;
    }
  }

  private end(id: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    this.byToken.delete(s.token);
    if (s.cred) this.byCred.delete(s.cred);
    if (this.byMachine.get(s.machine) === id) this.byMachine.delete(s.machine);
    for (const [task, h] of this.handed) if (h.id === id) this.handed.delete(task);
  }

  /**
   * Rewrites the log with live records only (expired tokens, ended sessions and their hand-outs dropped),
   * in the journal's queue and in the background: a failure (full disk) keeps the old file and is retried
   * at the next trigger.
   */
  private compact(): void {
    this.appended = 0;
    this.log.compactInBackground(() => {
      const now = this.now();
      for (const [h, t] of this.tokens) if (t.exp <= now) this.tokens.delete(h);
      return [
        ...[...this.floors].map(([machine, seq]) => ({ t: 'floor' as const, machine, seq })),
        ...[...this.secrets].map(([machine, s]) => ({ t: 'secrets' as const, machine, ...s })),
        ...[...this.tokens.values()].map((t) => ({ t: 'token' as const, ...t })),
        ...[...this.sessions.values()].map((s) => ({ t: 'session' as const, ...s })),
        ...[...this.handed].map(([task, h]) => ({ t: 'handed' as const, id: h.id, task, machine: h.machine, seq: 0 })),
      ];
    });
  }
}
