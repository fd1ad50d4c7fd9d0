import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { RecordLog } from '../state/record-log.js';
import type { BootSession } from './boot-sessions.js';
import { ConflictError } from '../../shared/errors/domain-errors.js';

/** What an installed OS's credential stands for: one machine, written by one image-deploy task. */
export interface OsCredential {
  machine: string;
  mac: string;
  /** The image-deploy task that wrote this OS (the credential's one and only issue). */
  task: string;
  /** sha256 of the credential; the credential itself is never stored. */
  cred: string;
  at: number;
}

type Rec = ({ t: 'issue' } & OsCredential) | { t: 'revoke'; machine: string } | { t: 'spent'; task: string };

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const SHAPE = /^[A-Za-z0-9_-]{43}$/;
/** Session ids of installed OSes: `os:<deploy task id>` (boot sessions' ids are random base64url, no colon). */
export const OS_SESSION_PREFIX = 'os:';

/**
 * Per-deploy installed-OS credentials (docs/decisions.md, "Installed-OS credential"). The agent issues
 * one to a machine's current boot session while it runs an image-deploy task, once per task; the deploy
 * writes it into the new OS (runner config, cloud-init seed URL). It authenticates that machine's
 * `/m/<credential>/…` configs and the runner routes, until the next deploy or a release revokes it. At
 * most one live credential per machine: issuing a new one revokes the old.
 *
 * Durable in the agent's record log (`os-credentials.jsonl`, fsync'd before the credential is handed
 * out); only hashes are written, so the state directory holds nothing a client could present.
 */
export class OsCredentials {
  private readonly log: RecordLog<Rec>;
  private readonly byMachine = new Map<string, OsCredential>();
  private readonly byCred = new Map<string, string>(); // cred hash → machine
  private readonly spent = new Set<string>(); // deploy tasks whose credential was issued
  private appended = 0;

  constructor(path: string, private readonly now: () => number = Date.now) {
    this.log = new RecordLog<Rec>(path);
  }

  async open(): Promise<void> {
    for (const r of await this.log.open()) this.apply(r);
    this.compact();
  }

  close(): Promise<void> {
    return this.log.close();
  }

  /**
   * A new credential for `machine`, written by deploy `task`. Single use per task: a second issue for the
   * same task is a ConflictError (whoever asked first holds it). Replaces the machine's previous one.
   */
  async issue(machine: string, mac: string, task: string): Promise<string> {
    if (this.spent.has(task)) throw new ConflictError('the installed-OS credential of this deploy was already issued');
    this.spent.add(task); // reserved synchronously: a racing second request is refused, not raced
    const credential = randomBytes(32).toString('base64url');
    try {
      await this.write({ t: 'issue', machine, mac, task, cred: sha(credential), at: this.now() });
    } catch (e) {
      this.spent.delete(task);
      throw e;
    }
    return credential;
  }

  /** The live credential record a presented credential belongs to, if any. */
  find(credential: string | undefined): OsCredential | undefined {
    if (!credential || !SHAPE.test(credential)) return undefined;
    const h = sha(credential);
    const machine = this.byCred.get(h);
    const c = machine ? this.byMachine.get(machine) : undefined;
    return c && timingSafeEqual(Buffer.from(c.cred), Buffer.from(h)) ? c : undefined;
  }

  /** The installed OS's session for a credential (id `os:<task>`), for the routes that take sessions. */
  session(credential: string | undefined, remote: string): BootSession | undefined {
    const c = this.find(credential);
    return c ? { id: `${OS_SESSION_PREFIX}${c.task}`, machine: c.machine, mac: c.mac, remote, token: '', cred: c.cred, at: c.at } : undefined;
  }

  ofMachine(machine: string): OsCredential | undefined {
    return this.byMachine.get(machine);
  }

  /** Revokes the machine's credential (next deploy, release); a no-op when it has none. */
  async revoke(machine: string): Promise<boolean> {
    if (!this.byMachine.has(machine)) return false;
    await this.write({ t: 'revoke', machine });
    return true;
  }

  private async write(r: Rec): Promise<void> {
    await this.log.append(r);
    this.apply(r);
    if (++this.appended > 1000 && this.appended > 4 * (this.byMachine.size + this.spent.size)) this.compact();
  }

  private apply(r: Rec): void {
    switch (r.t) {
      case 'issue': {
        const { t: _, ...c } = r;
        this.drop(c.machine);
        this.byMachine.set(c.machine, c);
        this.byCred.set(c.cred, c.machine);
        this.spent.add(c.task);
        break;
      }
      case 'revoke':
        this.drop(r.machine);
        break;
      case 'spent':
        this.spent.add(r.task);
        break;
    }
  }

  private drop(machine: string): void {
    const old = this.byMachine.get(machine);
    if (!old) return;
    this.byCred.delete(old.cred);
    this.byMachine.delete(machine);
  }

  private compact(): void {
    this.appended = 0;
    this.log.compactInBackground(() => [
      ...[...this.spent].map((task) => ({ t: 'spent' as const, task })),
      ...[...this.byMachine.values()].map((c) => ({ t: 'issue' as const, ...c })),
    ]);
  }
}
