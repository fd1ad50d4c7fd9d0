import { describe, expect, it } from 'vitest';
import { MACHINE_STATES, type MachineState } from '../../shared/api/lifecycle.js';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import { canFire, transition, TRIGGERS, type Trigger } from './state-machine.js';

/** The lifecycle written out by hand (issue 12): every legal (trigger, from) → to. Everything else is illegal. */
const LEGAL: Record<Trigger, Partial<Record<MachineState, MachineState>>> = {
  facts: { discovered: 'ready' },
  deploy: { ready: 'deploying', failed: 'deploying' },
  'deploy-failed': { deploying: 'failed' },
  'os-reported': { deploying: 'deployed' },
  installed: { discovered: 'deployed', ready: 'deployed', deploying: 'deployed', failed: 'deployed' },
  release: { deployed: 'releasing', failed: 'releasing', rescue: 'releasing' },
  'release-failed': { releasing: 'failed' },
  rediscovered: { releasing: 'ready' },
  rescue: { discovered: 'rescue', ready: 'rescue', deployed: 'rescue', failed: 'rescue' },
};

describe('machine lifecycle state machine', () => {
  const triggers = Object.keys(TRIGGERS) as Trigger[];

  it('has exactly the triggers of the table above', () => {
    expect(triggers.sort()).toEqual((Object.keys(LEGAL) as Trigger[]).sort());
  });

  for (const trigger of Object.keys(LEGAL) as Trigger[]) {
    for (const from of MACHINE_STATES) {
      const to = LEGAL[trigger][from];
      if (to) {
        it(`${from} --${trigger}--> ${to}`, () => {
          expect(canFire(from, trigger)).toBe(true);
          expect(transition({ name: 'm1', state: from }, trigger)).toBe(to);
        });
      } else {
        it(`${from} --${trigger}--> refused (409)`, () => {
          expect(canFire(from, trigger)).toBe(false);
          let err: unknown;
          try {
            transition({ name: 'm1', state: from }, trigger);
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(ConflictError);
          expect((err as Error).message).toContain(`machine "m1" is ${from}: ${trigger} needs a machine that is`);
        });
      }
    }
  }

  it('the happy path of issue 12 walks discovered → ready → deploying → deployed → releasing → ready', () => {
    let m = { name: 'm', state: 'discovered' as MachineState };
    for (const t of ['facts', 'deploy', 'os-reported', 'release', 'rediscovered'] as Trigger[]) m = { ...m, state: transition(m, t) };
    expect(m.state).toBe('ready');
  });
});
