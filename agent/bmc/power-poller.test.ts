import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import type { MachineState } from '../../shared/protocol/desired-state.js';
import { BmcAuthError, BmcUnreachableError } from './bmc.js';
import { DEFAULT_POWER_POLL, PowerPoller } from './power-poller.js';

const machine = (i: number, bmc = true, password = 'sealed-1'): MachineState => ({
  id: `m${i}`, name: `n${i}`, macs: [], bootenv: 'discovery', netboot: true, profiles: [], params: bmc ? { bmc_password: { $sealed: password } } : {},
  ...(bmc ? { bmc: { type: 'ipmi', address: `198.18.9.${i}`, username: 'admin', passwordParam: 'bmc_password' } } : {}),
});

/** A poller over fake BMCs (`read` decides each answer), a settable clock, and the events it sent. */
function rig(machines: MachineState[], read: (m: MachineState) => Promise<'on' | 'off'>, opts: Partial<typeof DEFAULT_POWER_POLL> = {}) {
  const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
  const events: { kind: string; data: { readings: { machineId: string; state: string; error?: string }[] } }[] = [];
  const calls: string[] = [];
  const poller = new PowerPoller(
    {
      machines: () => machines,
      bmc: { forMachine: (m) => ({ powerState: () => (calls.push(m.id), read(m)), power: async () => undefined, setBootDevice: async () => undefined }) },
      emitEvent: async (kind, data) => void events.push({ kind, data: data as (typeof events)[number]['data'] }),
      logger: silentLogger,
      now: () => clock.now,
    },
    { ...DEFAULT_POWER_POLL, intervalMs: 60_000, ...opts },
  );
  /** Advances the clock by one interval and runs a round. */
  const tick = async (ms = 60_000) => {
    clock.now += ms;
    return poller.round();
  };
  return { poller, events, calls, clock, tick };
}

describe('PowerPoller', () => {
  it('reads every machine with a BMC, at most `concurrency` at once, and sends one event per round', async () => {
    let inFlight = 0;
    let peak = 0;
    const machines = [...Array.from({ length: 10 }, (_, i) => machine(i)), machine(99, false)];
    const { poller, events } = rig(
      machines,
      async (m) => {
        peak = Math.max(peak, ++inFlight);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        if (m.id === 'm3') throw new BmcUnreachableError('the BMC at 198.18.9.3 did not answer');
        return m.id === 'm0' ? 'off' : 'on';
      },
      { concurrency: 3 },
    );
    const readings = await poller.round();
    expect(peak).toBe(3);
    expect(readings).toHaveLength(10);
    expect(readings.find((r) => r.machineId === 'm0')?.state).toBe('off');
    expect(readings.find((r) => r.machineId === 'm3')).toMatchObject({ state: 'unknown', error: expect.stringMatching(/^bmc-unreachable: .*did not answer/) });
    expect(readings.find((r) => r.machineId === 'm99')).toBeUndefined();
    expect(events).toEqual([{ kind: 'power-state', data: { readings } }]);
  });

  it('sends only what changed: no event for rounds where nothing changed, the changed machine alone, and a refresh after refreshMs', async () => {
    const power: Record<string, 'on' | 'off'> = { m1: 'on', m2: 'off' };
    const { events, tick } = rig([machine(1), machine(2)], async (m) => power[m.id]!, { refreshMs: 30 * 60_000 });
    await tick();
    expect(events).toHaveLength(1);
    for (let i = 0; i < 10; i++) await tick();
    expect(events).toHaveLength(1); // ten unchanged rounds: nothing sent (nothing stored at the central)
    power.m2 = 'on';
    await tick();
    expect(events).toHaveLength(2);
    expect(events[1]!.data.readings).toEqual([expect.objectContaining({ machineId: 'm2', state: 'on' })]);
    for (let i = 0; i < 18; i++) await tick(); // minute 30: m1 was sent at minute 1
    expect(events).toHaveLength(2);
    await tick(); // minute 31: m1's last sent reading is 30 min old; m2's (minute 12) is not
    expect(events).toHaveLength(3);
    expect(events[2]!.data.readings.map((r) => r.machineId)).toEqual(['m1']);
  });

  it('backs off a BMC that refuses the password (doubling waits up to maxBackoffMs), reports the failure once, and tries again at once after the password changes', async () => {
    const machines = [machine(1), machine(2)];
    const { events, calls, tick } = rig(machines, async (m) => {
      if (m.id === 'm1' && (m.params.bmc_password as { $sealed: string }).$sealed === 'sealed-1') throw new BmcAuthError('the BMC refused user "admin"');
      return 'on';
    }, { maxBackoffMs: 8 * 60_000, refreshMs: 2 * 3600_000 });
    // 60 rounds (one hour at one a minute): the healthy BMC is read every round, the refusing one 1+1+1+1 then every 8 min.
    for (let i = 0; i < 60; i++) await tick();
    const m1Calls = calls.filter((c) => c === 'm1').length;
    expect(calls.filter((c) => c === 'm2').length).toBe(60);
    // Tries at minutes 1, 2 (after 1), 4 (after 2), 8 (after 4), then every 8: 16, 24, 32, 40, 48, 56.
    expect(m1Calls).toBe(10);
    // The failure was sent once (unchanged afterwards), not once per try.
    expect(events.flatMap((e) => e.data.readings).filter((r) => r.machineId === 'm1')).toEqual([expect.objectContaining({ state: 'unknown', error: expect.stringMatching(/^bmc-auth: /) })]);
    // The operator sets the right password: the next round reads it, whatever the backoff said.
    machines[0] = machine(1, true, 'sealed-2');
    await tick();
    expect(calls.at(-2)).toBe('m1');
    expect(events.at(-1)!.data.readings).toEqual([expect.objectContaining({ machineId: 'm1', state: 'on' })]);
  });

  it('an unreachable BMC backs off too, and a success ends the backoff', async () => {
    let reachable = false;
    const { calls, tick } = rig([machine(1)], async () => {
      if (!reachable) throw new BmcUnreachableError('no answer');
      return 'off';
    }, { maxBackoffMs: 4 * 60_000 });
    for (let i = 0; i < 20; i++) await tick();
    // minutes 1, 2, 4, 8, 12, 16, 20
    expect(calls).toHaveLength(7);
    reachable = true;
    for (let i = 0; i < 4; i++) await tick();
    expect(calls).toHaveLength(8); // minute 24: read, backoff over
    for (let i = 0; i < 3; i++) await tick();
    expect(calls).toHaveLength(11); // every round again
  });
});
