import type { BmcConfig } from '../../shared/api/bmc.js';
import type { MachineState } from '../../shared/protocol/desired-state.js';
import { type Bmc, BmcRefusedError, type BmcTiming, DEFAULT_BMC_TIMING } from './bmc.js';
import { IpmiBmc } from './ipmi/ipmitool.js';
import { RedfishBmc } from './redfish/redfish.js';

/** Opens a sealed param value (the agent's key); the plaintext lives only as long as the call. */
export type OpenSecret = (sealed: unknown) => unknown;

/** How the agent reaches a machine's BMC: the config from its desired state, the password opened now. */
export interface BmcAccess {
  forMachine(m: MachineState): Bmc;
}

export function bmcAccess(openSecret: OpenSecret, timing: BmcTiming = DEFAULT_BMC_TIMING): BmcAccess {
  return {
    forMachine(m) {
      const config = m.bmc as BmcConfig | undefined;
      if (!config) throw new BmcRefusedError(`machine ${m.name} has no BMC configured (set its bmc and the secret param bmc_password)`);
      const sealed = m.params[config.passwordParam];
      if (sealed === undefined) throw new BmcRefusedError(`machine ${m.name} has no "${config.passwordParam}" param for its BMC password (or it is not sealed to this agent)`);
      const password = openSecret(sealed);
      if (typeof password !== 'string') throw new BmcRefusedError(`machine ${m.name}'s "${config.passwordParam}" is not a string`);
      const target = { config, password };
      return config.type === 'ipmi' ? new IpmiBmc(target, timing) : new RedfishBmc(target, timing);
    },
  };
}
