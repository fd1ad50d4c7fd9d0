import { POWER_STATE_EVENT, type PowerStateEvent } from '../../shared/api/bmc.js';
import type { Logger } from '../../shared/log/logger.js';
import type { MachineState } from '../../shared/protocol/desired-state.js';
import { bmcErrorReason } from './bmc.js';
import type { BmcAccess } from './connect.js';
import { PollBackoff } from './poll-backoff.js';

export interface PowerPollerOptions {
  /** Time between two rounds (ms). */
  intervalMs: number;
  /** BMCs read at the same time at most. */
  concurrency: number;
  /** An unchanged reading is sent again only after this long (ms), so the central's `readAt` stays recent. */
  refreshMs: number;
  /** The longest a failing BMC is left alone (ms): the wait after a failure doubles from `intervalMs` up to this. */
  maxBackoffMs: number;
}
export const DEFAULT_POWER_POLL: PowerPollerOptions = { intervalMs: 60_000, concurrency: 8, refreshMs: 30 * 60_000, maxBackoffMs: 60 * 60_000 };

type Reading = PowerStateEvent['readings'][number];

/**
 * Reads the power state of every machine of the site that has a BMC, `concurrency` at a time, every
 * `intervalMs`. Only what changed is sent (one `power-state` event per round, none when nothing changed),
 * plus every machine's reading again once per `refreshMs`: a stable site sends a few events a day, not
 * one per round. A BMC that fails (wrong password, unreachable) is reported as `unknown` with the reason
 * and then left alone for a doubling wait (PollBackoff): a wrong password costs a few logins a day, not
 * one per round (BMCs lock accounts). A changed BMC config or password is read in the next round.
 * A round never overlaps the next.
 */
export class PowerPoller {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly sent = new Map<string, Reading>();
  private readonly backoff: PollBackoff;

  constructor(
    private readonly d: { machines: () => MachineState[]; bmc: BmcAccess; emitEvent: (kind: string, data: unknown) => Promise<void>; logger: Logger; now?: () => number },
    private readonly o: PowerPollerOptions = DEFAULT_POWER_POLL,
  ) {
    this.backoff = new PollBackoff(o.intervalMs, o.maxBackoffMs);
  }

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.round()
        .then(() => undefined)
        .catch((e: Error) => this.d.logger.warn({ err: e.message }, 'power poll round failed'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.o.intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, Math.min(this.o.intervalMs, 1000)).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One round: read every BMC that is due (bounded), send what changed (or is due a refresh) as one event. */
  async round(): Promise<Reading[]> {
    const withBmc = this.d.machines().filter((m) => m.bmc);
    this.forgetGone(withBmc);
    const todo = withBmc.filter((m) => this.backoff.due(m.id, bmcKey(m), this.now()));
    const readings: Reading[] = [];
    let next = 0;
    const worker = async () => {
      while (next < todo.length && !this.stopped) {
        const m = todo[next++]!;
        try {
          const state = await this.d.bmc.forMachine(m).powerState();
          this.backoff.succeeded(m.id);
          readings.push({ machineId: m.id, state, readAt: new Date(this.now()).toISOString() });
        } catch (e) {
          const waitMs = this.backoff.failed(m.id, this.now());
          this.d.logger.warn({ machine: m.name, reason: bmcErrorReason(e), err: (e as Error).message, nextTryInMs: waitMs }, 'BMC power reading failed; backing off');
          readings.push({ machineId: m.id, state: 'unknown', readAt: new Date(this.now()).toISOString(), error: `${bmcErrorReason(e)}: ${(e as Error).message}`.slice(0, 1024) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.o.concurrency, todo.length)) }, worker));
    const toSend = readings.filter((r) => this.worthSending(r));
    if (toSend.length > 0) {
      await this.d.emitEvent(POWER_STATE_EVENT, { readings: toSend } satisfies PowerStateEvent);
      for (const r of toSend) this.sent.set(r.machineId, r);
    }
    return toSend;
  }

  /** A reading goes out when the state or error changed since the last one sent, or that one is older than refreshMs. */
  private worthSending(r: Reading): boolean {
    const last = this.sent.get(r.machineId);
    if (!last || last.state !== r.state || last.error !== r.error) return true;
    return Date.parse(r.readAt) - Date.parse(last.readAt) >= this.o.refreshMs;
  }

  /** Machines no longer in the state (or without a BMC): their memory goes (a re-added one is read at once). */
  private forgetGone(current: MachineState[]): void {
    const ids = new Set(current.map((m) => m.id));
    for (const id of this.sent.keys()) if (!ids.has(id)) this.sent.delete(id);
    this.backoff.keep(ids);
  }
}

/** What identifies a BMC's access: its config and the sealed password (a change means: try again now). */
function bmcKey(m: MachineState): string {
  const passwordParam = (m.bmc as { passwordParam?: string } | undefined)?.passwordParam ?? 'bmc_password';
  return JSON.stringify([m.bmc, m.params[passwordParam] ?? null]);
}
