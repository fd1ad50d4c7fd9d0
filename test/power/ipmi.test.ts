import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BmcAuthError, BmcRefusedError, BmcUnreachableError } from '../../agent/bmc/bmc.js';
import { IpmiBmc } from '../../agent/bmc/ipmi/ipmitool.js';
import { checkPrereqs } from '../support/require.js';
import { startIpmiSim, type IpmiSim } from './ipmi-sim.js';
import { freePort } from '../support/ports.js';

const ready = checkPrereqs('power/ipmi', { commands: ['ipmi_sim', 'ipmitool'] });
const PASSWORD = 'ipmi-Pw-7c1e9';

/**
 * The IPMI driver against OpenIPMI's ipmi_sim (lanplus, RMCP+) with a chassis_control script that keeps
 * the power and boot device in files: every action is checked against what the BMC side recorded.
 */
describe.skipIf(!ready)('IPMI driver (ipmitool) against ipmi_sim', () => {
  let dir: string;
  let sim: IpmiSim;
  let wrapper: string;
  const bmc = (password = PASSWORD, port?: number) =>
    new IpmiBmc({ config: { type: 'ipmi', address: '127.0.0.1', port: port ?? sim.port, username: 'admin', passwordParam: 'bmc_password' }, password }, { timeoutMs: 1000, retries: 1 }, wrapper);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'underlay-ipmi-'));
    sim = await startIpmiSim(join(dir, 'bmc'), { password: PASSWORD });
    // A wrapper that records each invocation's argv, then runs the real ipmitool.
    wrapper = join(dir, 'ipmitool');
    writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> ${join(dir, 'argv.log')}\nexec ipmitool "$@"\n`);
    chmodSync(wrapper, 0o755);
  });
  afterAll(async () => {
    await sim?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const invocations = () => readFileSync(join(dir, 'argv.log'), 'utf8').trim().split('\n');

  it('reads the power state and powers on, off, cycles and resets (the BMC side records each)', async () => {
    expect(await bmc().powerState()).toBe('off');
    await bmc().power('on');
    expect(sim.file('power')).toBe('1');
    expect(await bmc().powerState()).toBe('on');
    await bmc().power('reset');
    expect(sim.file('resets')).toBe('reset');
    await bmc().power('off');
    expect(sim.file('power')).toBe('0');
    expect(await bmc().powerState()).toBe('off');
    await bmc().power('on');
    await bmc().power('cycle');
    // ipmi_sim cycles as off, then on about a second later.
    expect(sim.file('calls')).toMatch(/set power 0[\s\S]*set power 1\s*$/m);
  });

  it('sets the boot device (pxe once, disk persistent)', async () => {
    await bmc().setBootDevice('pxe', false);
    expect(sim.file('boot')).toBe('pxe');
    await bmc().setBootDevice('disk', true);
    expect(sim.file('boot')).toBe('default');
    expect(invocations().at(-1)).toContain('options=persistent');
  });

  it('never puts the password on the command line', () => {
    expect(invocations().length).toBeGreaterThan(3);
    for (const line of invocations()) expect(line).not.toContain(PASSWORD);
  });

  it('a wrong password is a clear auth error after one ipmitool call (no retry storm)', async () => {
    const before = invocations().length;
    const e = await bmc('wrong-password').powerState().catch((x: Error) => x);
    expect(e).toBeInstanceOf(BmcAuthError);
    expect((e as Error).message).toMatch(/refused user "admin": wrong user name or password/);
    expect(invocations().length - before).toBe(1); // one call: no retry storm
  });

  it('an unreachable BMC is an unavailable error within the timeout bound', async () => {
    const t0 = Date.now();
    const e = await bmc(PASSWORD, await freePort()).powerState().catch((x: Error) => x);
    expect(e).toBeInstanceOf(BmcUnreachableError);
    expect((e as Error).message).toMatch(/did not answer/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('a refused operation with exit code 0 is still an error (the output is checked)', async () => {
    // A fake ipmitool that prints what ipmi_sim without chassis_control prints, and exits 0.
    const fake = join(dir, 'fake-ipmitool');
    writeFileSync(fake, '#!/bin/sh\necho "Set Chassis Boot Parameter 5 failed: Invalid data field in request"\nexit 0\n');
    chmodSync(fake, 0o755);
    const b = new IpmiBmc({ config: { type: 'ipmi', address: '127.0.0.1', port: sim.port, username: 'admin', passwordParam: 'bmc_password' }, password: PASSWORD }, { timeoutMs: 1000, retries: 0 }, fake);
    await expect(b.setBootDevice('pxe', false)).rejects.toBeInstanceOf(BmcRefusedError);
  });
});
