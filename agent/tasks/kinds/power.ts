import type { TaskEnvelope } from '../../../shared/envelope/envelope.js';
import { POWER_STATE_EVENT, type PowerStateEvent } from '../../../shared/api/bmc.js';
import { type Bmc, bmcErrorReason } from '../../bmc/bmc.js';
import type { KindContext, KindHandler, KindOutcome } from './handler.js';
import { unknownMachine } from './handler.js';

/** Runs `fn` against the machine's BMC; BMC errors become a failed outcome with a short reason. */
export async function withMachineBmc(env: TaskEnvelope, ctx: KindContext, fn: (bmc: Bmc) => Promise<KindOutcome>): Promise<KindOutcome> {
  const m = env.machine ? ctx.desiredState.machineById(env.machine) : undefined;
  if (!m) return unknownMachine(env);
  if (!ctx.bmc) return { state: 'failed', reason: 'bmc-unavailable', output: 'this agent runs without BMC access' };
  try {
    return await fn(ctx.bmc.forMachine(m));
  } catch (e) {
    ctx.logger.warn({ machine: m.name, reason: bmcErrorReason(e), err: (e as Error).message }, 'BMC operation failed');
    return { state: 'failed', reason: bmcErrorReason(e), output: (e as Error).message };
  }
}

/** Tells the central the state just read (the same event the poller sends). */
export async function reportReading(ctx: KindContext, machineId: string, state: 'on' | 'off'): Promise<void> {
  const ev: PowerStateEvent = { readings: [{ machineId, state, readAt: new Date().toISOString() }] };
  await ctx.emitEvent(POWER_STATE_EVENT, ev);
}

/** `power`: on, off, cycle, reset or status through the machine's BMC; the state read afterwards is reported. */
export const power: KindHandler<'power'> = (env, p, ctx) =>
  withMachineBmc(env, ctx, async (bmc) => {
    if (p.action === 'status') {
      const state = await bmc.powerState();
      await reportReading(ctx, env.machine!, state);
      return { state: 'succeeded', output: `power ${state}` };
    }
    await bmc.power(p.action);
    // Read back, best effort: the BMC may still be settling (the poller corrects a transitional reading).
    const state = await bmc.powerState().catch(() => undefined);
    if (state) await reportReading(ctx, env.machine!, state);
    return { state: 'succeeded', output: `power ${p.action} done${state ? `; power is ${state}` : ''}` };
  });
