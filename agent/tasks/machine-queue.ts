import type { SignedTask } from '../../shared/envelope/envelope.js';
import type { Logger } from '../../shared/log/logger.js';
import { RecordLog } from '../state/record-log.js';

export interface MachineTask {
  id: string;
  machine: string;
  kind: string;
  signed: SignedTask;
  expiresAt: string;
}
type Rec = { t: 'add'; task: MachineTask } | { t: 'take'; id: string } | { t: 'done'; id: string };

/**
 * Tasks for machines' own runners (run-script, reboot, poweroff), durable so a task accepted while the
 * machine is away survives an agent restart. The agent never runs these itself: it hands the signed
 * envelope to the machine, which verifies it against the central's key before running it.
 */
export class MachineQueue {
  private readonly log: RecordLog<Rec>;
  private readonly queued = new Map<string, MachineTask>();
  private readonly taken = new Map<string, MachineTask>();
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(path: string, logger?: Logger) {
    this.log = new RecordLog<Rec>(path, logger, (v): Rec => {
      const r = v as Rec | null;
      const ok = r?.t === 'add' ? typeof r.task?.id === 'string' && typeof r.task.machine === 'string' : (r?.t === 'take' || r?.t === 'done') && typeof r.id === 'string';
      if (!ok) throw new Error('not a machine-queue record');
      return r!;
    });
  }

  async open(): Promise<void> {
    for (const r of await this.log.open()) {
      if (r.t === 'add') this.queued.set(r.task.id, r.task);
      else if (r.t === 'take') {
        const t = this.queued.get(r.id);
        if (t) {
          this.queued.delete(r.id);
          this.taken.set(r.id, t);
        }
      } else {
        this.queued.delete(r.id);
        this.taken.delete(r.id);
      }
    }
    this.log.compactInBackground(() => [
      ...[...this.queued.values()].map((task): Rec => ({ t: 'add', task })),
      ...[...this.taken.values()].flatMap((task): Rec[] => [{ t: 'add', task }, { t: 'take', id: task.id }]),
    ]);
  }

  async add(task: MachineTask): Promise<void> {
    if (this.queued.has(task.id) || this.taken.has(task.id)) return;
    this.queued.set(task.id, task);
    try {
      await this.log.append({ t: 'add', task });
    } catch (e) {
      this.queued.delete(task.id); // not on disk: not queued
      throw e;
    }
    for (const w of this.waiters.get(task.machine) ?? []) w();
  }

  /** The oldest unexpired queued task for a machine, marked taken (handed to its runner). */
  async take(machine: string): Promise<MachineTask | undefined> {
    const now = Date.now();
    for (const t of this.queued.values()) {
      if (t.machine !== machine) continue;
      if (Date.parse(t.expiresAt) <= now) continue;
      this.queued.delete(t.id);
      this.taken.set(t.id, t);
      try {
        await this.log.append({ t: 'take', id: t.id });
      } catch (e) {
        this.taken.delete(t.id); // not recorded as handed over: still queued
        this.queued.set(t.id, t);
        throw e;
      }
      return t;
    }
    return undefined;
  }

  /** Waits up to `ms` for a task for this machine. */
  async waitFor(machine: string, ms: number): Promise<MachineTask | undefined> {
    const now = await this.take(machine);
    if (now || ms <= 0) return now;
    await new Promise<void>((resolve) => {
      const set = this.waiters.get(machine) ?? new Set();
      this.waiters.set(machine, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
    return this.take(machine);
  }

  get(id: string): MachineTask | undefined {
    return this.queued.get(id) ?? this.taken.get(id);
  }

  async done(id: string): Promise<void> {
    if (!this.queued.delete(id) && !this.taken.delete(id)) return;
    await this.log.append({ t: 'done', id });
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
