import { POWER_STATE_EVENT, type PowerStateEvent } from '../../shared/api/bmc.js';
import type { Logger } from '../../shared/log/logger.js';
import type { MachineState } from '../../shared/protocol/desired-state.js';
import { bmcErrorReason } from './bmc.js';
import type { BmcAccess } from './connect.js';

export interface PowerPollerOptions {
  /** Time between two rounds (ms). */
  intervalMs: number;
  /** BMCs read at the same time at most. */
  concurrency: number;
}
export const DEFAULT_POWER_POLL: PowerPollerOptions = { intervalMs: 60_000, concurrency: 8 };

/**
 * Reads the power state of every machine of the site that has a BMC, `concurrency` at a time, every
 * `intervalMs`, and sends one `power-state` event per round (a BMC that fails is reported as
 * `unknown` with the reason). A round never overlaps the next.
 */
export class PowerPoller {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly d: { machines: () => MachineState[]; bmc: BmcAccess; emitEvent: (kind: string, data: unknown) => Promise<void>; logger: Logger },
    private readonly o: PowerPollerOptions = DEFAULT_POWER_POLL,
  ) {}

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

  /** One round: read every BMC (bounded), send the readings as one event. */
  async round(): Promise<PowerStateEvent['readings']> {
    const todo = this.d.machines().filter((m) => m.bmc);
    const readings: PowerStateEvent['readings'] = [];
    let next = 0;
    const worker = async () => {
      while (next < todo.length && !this.stopped) {
        const m = todo[next++]!;
        try {
          const state = await this.d.bmc.forMachine(m).powerState();
          readings.push({ machineId: m.id, state, readAt: new Date().toISOString() });
        } catch (e) {
          readings.push({ machineId: m.id, state: 'unknown', readAt: new Date().toISOString(), error: `${bmcErrorReason(e)}: ${(e as Error).message}`.slice(0, 1024) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.o.concurrency, todo.length)) }, worker));
    if (readings.length > 0) await this.d.emitEvent(POWER_STATE_EVENT, { readings } satisfies PowerStateEvent);
    return readings;
  }
}
