import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createSocket } from 'node:dgram';

const CHASSIS = resolve(import.meta.dirname, 'chassis-control.sh');

/** OpenIPMI's ipmi_sim as a BMC on 127.0.0.1:port (lanplus, user admin), state in `dir`. */
export interface IpmiSim {
  port: number;
  dir: string;
  stop(): Promise<void>;
  /** The chassis script's stored files (power, boot, resets, calls). */
  file(name: string): string;
}

/** A free UDP port on loopback. */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Starts ipmi_sim with a chassis_control script (test/power/chassis-control.sh copied into `dir`). With
 * `qemuCmd`, power on/off really start and stop that QEMU; with `serialPort`, ipmi_sim also listens for
 * QEMU's ipmi-bmc-extern device there.
 */
export async function startIpmiSim(dir: string, opts: { password: string; qemuCmd?: string; serialPort?: number }): Promise<IpmiSim> {
  mkdirSync(join(dir, 'state'), { recursive: true });
  copyFileSync(CHASSIS, join(dir, 'chassis.sh'));
  if (opts.qemuCmd) writeFileSync(join(dir, 'qemu.cmd'), opts.qemuCmd);
  const port = await freeUdpPort();
  writeFileSync(
    join(dir, 'lan.conf'),
    [
      'name "underlay-test"',
      'set_working_mc 0x20',
      '  startlan 1',
      `    addr 127.0.0.1 ${port}`,
      '    priv_limit admin',
      ...['callback', 'user', 'operator', 'admin'].map((p) => `    allowed_auths_${p} none md2 md5 straight`),
      '    guid a123456789abcdefa123456789abcdef',
      '  endlan',
      ...(opts.serialPort ? [`  serial 15 127.0.0.1 ${opts.serialPort} codec VM`] : []),
      `  chassis_control "${join(dir, 'chassis.sh')}"`,
      `  user 2 true "admin" "${opts.password}" admin 10 none md2 md5 straight`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'bmc.emu'), ['mc_setbmc 0x20', 'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr', 'sel_enable 0x20 1000 0x0a', 'mc_enable 0x20', ''].join('\n'));
  const proc: ChildProcess = spawn('ipmi_sim', ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'bmc.emu'), '-s', join(dir, 'state'), '-n'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let exited = false;
  proc.on('exit', () => (exited = true));
  await new Promise((r) => setTimeout(r, 500));
  if (exited) throw new Error(`ipmi_sim exited at start: ${proc.stderr?.read()?.toString() ?? ''}`);
  return {
    port,
    dir,
    file: (name) => {
      try {
        return readFileSync(join(dir, name), 'utf8').trim();
      } catch {
        return '';
      }
    },
    async stop() {
      if (exited) return;
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}
