import type { Wait } from '../../shared/api/workflows.js';
import { MACHINES } from '../machines/resources.js';
import { SERVICES } from '../services/registry.js';
import type { Change } from '../store/change-feed.js';
import type { Store } from '../store/types.js';
import { passingMembers, waitHolds } from './gates.js';

/** Collections whose changes can open a param gate. */
const PARAM_SOURCES = new Set(['machines', 'profiles', 'sites', 'params']);

/** Runs that wait on the same thing: a service wait or a machines wait holds for all of them or for none. */
interface Group {
  wait: Wait;
  runs: Set<string>;
}

/**
 * The runs waiting at a gate, indexed by what their gate watches, so that a store change costs one check
 * per distinct wait it concerns instead of one per waiting run: 1,000 runs waiting for "etcd has 3 passing
 * members" are one group, checked once per change to etcd's record and woken together when it holds.
 * A change to any other collection (tasks, runs: the bulk of a busy central's changes) touches nothing.
 * Param gates depend on the run's machine: a machine's change wakes only that machine's run; a profile,
 * site or param change wakes every param-waiting run (the run's drive re-checks its own gate).
 */
export class WaitingGates {
  /** Shared waits (service, machines) by their key. */
  private readonly groups = new Map<string, Group>();
  /** Group keys of service waits, by service name. */
  private readonly byService = new Map<string, Set<string>>();
  /** Group keys of machines waits. */
  private readonly machineGroups = new Set<string>();
  /** Param-waiting runs → their machine. */
  private readonly params = new Map<string, string>();
  /** Where each run is indexed (its group key, "param" or "approval"). */
  private readonly where = new Map<string, string>();
  /** Waits checked on changes (one per distinct wait a change concerns), for the benchmark and metrics. */
  checks = 0;

  constructor(private readonly store: Store) {}

  get size(): number {
    return this.where.size;
  }

  /** Indexes a waiting run: `wait` undefined means it waits for an approval only (no change opens that). */
  add(runId: string, machineId: string, wait: Wait | undefined): void {
    this.remove(runId);
    if (!wait) return void this.where.set(runId, 'approval');
    if ('param' in wait) {
      this.params.set(runId, machineId);
      return void this.where.set(runId, 'param');
    }
    const key = 'service' in wait ? `service\0${wait.service}\0${wait.passing}` : `machines\0${wait.machines}\0${wait.state}`;
    let g = this.groups.get(key);
    if (!g) {
      g = { wait, runs: new Set() };
      this.groups.set(key, g);
      if ('service' in wait) setOf(this.byService, wait.service).add(key);
      else this.machineGroups.add(key);
    }
    g.runs.add(runId);
    this.where.set(runId, key);
  }

  remove(runId: string): void {
    const key = this.where.get(runId);
    if (key === undefined) return;
    this.where.delete(runId);
    if (key === 'param') return void this.params.delete(runId);
    const g = this.groups.get(key);
    if (!g) return;
    g.runs.delete(runId);
    if (g.runs.size > 0) return;
    this.groups.delete(key);
    if ('service' in g.wait) {
      const keys = this.byService.get(g.wait.service)!;
      keys.delete(key);
      if (keys.size === 0) this.byService.delete(g.wait.service);
    } else this.machineGroups.delete(key);
  }

  /** The runs a change may let through (each one's drive evaluates its gate again before it moves on). */
  concerned(c: Change): string[] {
    if (this.where.size === 0) return [];
    const out: string[] = [];
    if (c.collection === SERVICES) {
      const names = new Set([c.doc?.name, c.before?.name].filter((n): n is string => typeof n === 'string'));
      // Counted from the stored document the change carries (the registry's memory may not have followed yet).
      const passing = passingMembers(c.doc as never);
      for (const name of names) {
        for (const key of this.byService.get(name) ?? []) {
          this.checks++;
          const g = this.groups.get(key)!;
          if ('service' in g.wait && c.doc?.name === name && passing >= g.wait.passing) out.push(...g.runs);
        }
      }
    }
    if (c.collection === MACHINES) {
      for (const key of this.machineGroups) {
        this.checks++;
        const g = this.groups.get(key)!;
        if (waitHolds({ store: this.store }, g.wait, '')) out.push(...g.runs);
      }
    }
    if (PARAM_SOURCES.has(c.collection)) {
      for (const [run, machine] of this.params) if (c.collection !== MACHINES || machine === c.id) out.push(run);
    }
    return out;
  }
}

function setOf<K, V>(m: Map<K, Set<V>>, k: K): Set<V> {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  return s;
}
