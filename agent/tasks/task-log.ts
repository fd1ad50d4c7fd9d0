import type { Logger } from '../../shared/log/logger.js';
import { RecordLog } from '../state/record-log.js';

export interface TaskRecord {
  id: string;
  seq: number;
  kind: string;
  machine: string | null;
  /** Last state reported for it (re-reported on a duplicate delivery). */
  state: 'accepted' | 'running' | 'succeeded' | 'failed' | 'rejected' | 'cancelled';
  at: string;
}

const KEEP = 50_000;

/**
 * Durable memory of which tasks this agent accepted and the highest sequence number seen, so a replay —
 * also after an agent restart — is recognised: a known id is a redelivery (answered idempotently, not
 * re-run); an unknown id at or below the high-water mark is a replay and rejected.
 */
export class TaskLog {
  private readonly log: RecordLog<TaskRecord>;
  private readonly tasks = new Map<string, TaskRecord>();
  lastSeq = 0;
  private appended = 0;

  constructor(path: string, logger?: Logger) {
    this.log = new RecordLog<TaskRecord>(path, logger, (v) => {
      const r = v as TaskRecord | null;
      if (typeof r?.id !== 'string' || typeof r.seq !== 'number') throw new Error('not a task record');
      return r;
    });
  }

  async open(): Promise<void> {
    for (const r of await this.log.open()) {
      this.tasks.set(r.id, { ...this.tasks.get(r.id), ...r });
      this.lastSeq = Math.max(this.lastSeq, r.seq);
    }
  }

  get(id: string): TaskRecord | undefined {
    return this.tasks.get(id);
  }

  async record(r: TaskRecord): Promise<void> {
    const prev = this.tasks.get(r.id);
    const prevSeq = this.lastSeq;
    this.tasks.set(r.id, r);
    this.lastSeq = Math.max(this.lastSeq, r.seq);
    try {
      await this.log.append(r);
    } catch (e) {
      // Not on disk (a full disk): not in memory either, or a redelivery would be taken for a known task.
      if (this.tasks.get(r.id) === r) {
        if (prev) this.tasks.set(r.id, prev);
        else this.tasks.delete(r.id);
        if (this.lastSeq === Math.max(prevSeq, r.seq)) this.lastSeq = prevSeq;
      }
      throw e;
    }
    if (++this.appended > KEEP) {
      this.appended = 0;
      // Keep the newest records; the high-water mark stays in the newest one.
      const keep = [...this.tasks.values()].sort((a, b) => a.seq - b.seq).slice(-KEEP / 2);
      this.tasks.clear();
      for (const k of keep) this.tasks.set(k.id, k);
      this.log.compactInBackground(() => [...this.tasks.values()]);
    }
  }

  /** How many remembered tasks are in each `kind|state` (the agent's metrics). */
  countsByKindAndState(): Map<string, number> {
    const out = new Map<string, number>();
    for (const t of this.tasks.values()) out.set(`${t.kind}|${t.state}`, (out.get(`${t.kind}|${t.state}`) ?? 0) + 1);
    return out;
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
