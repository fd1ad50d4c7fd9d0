import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import type { MachineState } from '../../shared/protocol/desired-state.js';
import { BmcUnreachableError } from './bmc.js';
import { PowerPoller } from './power-poller.js';

const machine = (i: number, bmc = true): MachineState => ({
  id: `m${i}`, name: `n${i}`, macs: [], bootenv: 'discovery', netboot: true, profiles: [], params: {},
  ...(bmc ? { bmc: { type: 'ipmi', address: `198.18.9.${i}`, username: 'admin', passwordParam: 'bmc_password' } } : {}),
});

describe('PowerPoller', () => {
  it('reads every machine with a BMC, at most `concurrency` at once, and sends one event per round', async () => {
    let inFlight = 0;
    let peak = 0;
    const events: { kind: string; data: unknown }[] = [];
    const machines = [...Array.from({ length: 10 }, (_, i) => machine(i)), machine(99, false)];
    const poller = new PowerPoller(
      {
        machines: () => machines,
        bmc: {
          forMachine: (m) => ({
            powerState: async () => {
              peak = Math.max(peak, ++inFlight);
              await new Promise((r) => setTimeout(r, 20));
              inFlight--;
              if (m.id === 'm3') throw new BmcUnreachableError('the BMC at 198.18.9.3 did not answer');
              return m.id === 'm0' ? 'off' : 'on';
            },
            power: async () => undefined,
            setBootDevice: async () => undefined,
          }),
        },
        emitEvent: async (kind, data) => void events.push({ kind, data }),
        logger: silentLogger,
      },
      { intervalMs: 60_000, concurrency: 3 },
    );
    const readings = await poller.round();
    expect(peak).toBe(3);
    expect(readings).toHaveLength(10);
    expect(readings.find((r) => r.machineId === 'm0')?.state).toBe('off');
    expect(readings.find((r) => r.machineId === 'm3')).toMatchObject({ state: 'unknown', error: expect.stringMatching(/^bmc-unreachable: .*did not answer/) });
    expect(readings.find((r) => r.machineId === 'm99')).toBeUndefined();
    expect(events).toEqual([{ kind: 'power-state', data: { readings } }]);
  });
});
