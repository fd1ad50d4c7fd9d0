import type { BmcConfig } from '../../shared/api/bmc.js';
import { ForbiddenError, InvalidError, UnavailableError } from '../../shared/errors/domain-errors.js';

/** What the agent can ask of any BMC, whatever its protocol. */
export interface Bmc {
  /** The chassis power state as the BMC reports it now. */
  powerState(): Promise<'on' | 'off'>;
  power(action: 'on' | 'off' | 'cycle' | 'reset'): Promise<void>;
  /** The next boot device: the next boot only, or every boot until changed. */
  setBootDevice(device: 'pxe' | 'disk', persistent: boolean): Promise<void>;
}

/** A BMC to talk to: its config from the desired state and the password the agent opened. */
export interface BmcTarget {
  config: BmcConfig;
  password: string;
}

/** Timeouts and retries of one BMC operation. */
export interface BmcTiming {
  /** Per attempt (ms). */
  timeoutMs: number;
  /** Further attempts after a timeout or an unreachable BMC (never after a refused login). */
  retries: number;
}
export const DEFAULT_BMC_TIMING: BmcTiming = { timeoutMs: 10_000, retries: 2 };

/** The BMC refused the credentials (never retried: a wrong password retried locks accounts). */
export class BmcAuthError extends ForbiddenError {}
/** The BMC did not answer (network, timeout, TLS). */
export class BmcUnreachableError extends UnavailableError {}
/** The BMC answered but cannot do this (unsupported action or device, or a failure it reported). */
export class BmcRefusedError extends InvalidError {}

/** A short reason for a task report or a reading, by error class. */
export function bmcErrorReason(e: unknown): string {
  if (e instanceof BmcAuthError) return 'bmc-auth';
  if (e instanceof BmcUnreachableError) return 'bmc-unreachable';
  if (e instanceof BmcRefusedError) return 'bmc-refused';
  return 'bmc-error';
}
