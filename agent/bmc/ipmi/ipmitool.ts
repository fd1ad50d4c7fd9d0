import { execFile } from 'node:child_process';
import { type Bmc, BmcAuthError, BmcRefusedError, type BmcTarget, type BmcTiming, BmcUnreachableError, DEFAULT_BMC_TIMING } from '../bmc.js';

/** The ipmitool binary (Debian `ipmitool`, a dependency of the agent host; docs/bmc.md). */
export const IPMITOOL = process.env.UNDERLAY_IPMITOOL ?? 'ipmitool';

const POWER_WORDS = { on: 'Up/On', off: 'Down/Off', cycle: 'Cycle', reset: 'Reset' } as const;

/**
 * IPMI 2.0 over LAN (RMCP+, `-I lanplus -C 3`) through ipmitool. The password goes through the
 * environment (`-E`, IPMI_PASSWORD), never argv (`ps` shows argv). ipmitool exits 0 after some failures
 * (a boot device the BMC refused), so every call checks the output for what success prints.
 */
export class IpmiBmc implements Bmc {
  constructor(
    private readonly target: BmcTarget,
    private readonly timing: BmcTiming = DEFAULT_BMC_TIMING,
    private readonly bin = IPMITOOL,
  ) {}

  async powerState(): Promise<'on' | 'off'> {
    const out = await this.run(['chassis', 'power', 'status']);
    const m = /Chassis Power is (on|off)/.exec(out);
    if (!m) throw new BmcRefusedError(`the BMC did not say its power state: ${lastLine(out)}`);
    return m[1] as 'on' | 'off';
  }

  async power(action: 'on' | 'off' | 'cycle' | 'reset'): Promise<void> {
    const out = await this.run(['chassis', 'power', action]);
    if (!out.includes(`Chassis Power Control: ${POWER_WORDS[action]}`) || /failed/i.test(out)) throw new BmcRefusedError(`power ${action} refused by the BMC: ${lastLine(out)}`);
  }

  async setBootDevice(device: 'pxe' | 'disk', persistent: boolean): Promise<void> {
    const out = await this.run(['chassis', 'bootdev', device, ...(persistent ? ['options=persistent'] : [])]);
    if (!out.includes(`Set Boot Device to ${device}`) || /failed/i.test(out)) throw new BmcRefusedError(`boot device ${device} refused by the BMC: ${lastLine(out)}`);
  }

  /** One ipmitool call; ipmitool itself retries (-R) with a per-try timeout (-N). Output: stdout + stderr. */
  private run(args: string[]): Promise<string> {
    const c = this.target.config;
    const perTry = Math.max(1, Math.ceil(this.timing.timeoutMs / 1000));
    const argv = ['-v', '-I', 'lanplus', '-C', '3', '-H', c.address, '-p', String(c.port ?? 623), '-U', c.username, '-E', '-N', String(perTry), '-R', String(this.timing.retries + 1), ...args];
    const overall = (perTry * (this.timing.retries + 1) + 5) * 1000;
    return new Promise((resolve, reject) => {
      execFile(this.bin, argv, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IPMI_PASSWORD: this.target.password }, timeout: overall, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        const out = `${stdout}\n${stderr}`;
        if (/unauthorized name|HMAC is invalid|RAKP \d message indicates an error|invalid password/i.test(out)) return reject(new BmcAuthError(`the BMC at ${c.address} refused user "${c.username}": wrong user name or password`));
        if (/Unable to establish IPMI v2|No response|Connection refused|timeout/i.test(out) || (err && (err as { killed?: boolean }).killed)) {
          return reject(new BmcUnreachableError(`the BMC at ${c.address}:${c.port ?? 623} did not answer (IPMI lanplus, ${this.timing.retries + 1} tries)`));
        }
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new BmcUnreachableError(`${this.bin} is not installed on the agent host (apt-get install ipmitool)`));
        if (err) return reject(new BmcRefusedError(`ipmitool failed: ${lastLine(out)}`));
        resolve(out);
      });
    });
  }
}

function lastLine(out: string): string {
  return (out.trim().split('\n').filter((l) => l.trim()).at(-1) ?? 'no output').slice(0, 300);
}
