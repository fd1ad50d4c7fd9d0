import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { NetNs } from '../support/netns.js';
import { freePort } from '../support/ports.js';

const CHASSIS = resolve(import.meta.dirname, 'chassis-control.sh');

/** OpenIPMI's ipmi_sim as a BMC on 127.0.0.1:port (lanplus, user admin), state in `dir`. */
export interface IpmiSim {
  port: number;
  dir: string;
  stop(): Promise<void>;
  /** The chassis script's stored files (power, boot, resets, calls). */
  file(name: string): string;
}

/**
 * Starts ipmi_sim with a chassis_control script (test/power/chassis-control.sh copied into `dir`). With
 * `qemuCmd`, power on/off really start and stop that QEMU; with `serialPort`, ipmi_sim also listens for
 * QEMU's ipmi-bmc-extern device there.
 */
export async function startIpmiSim(
  dir: string,
  opts: {
    password: string;
    qemuCmd?: string;
    serialPort?: number;
    /** Run inside this namespace (its loopback; the QEMU it starts is in it too), on this UDP port. */
    netns?: { ns: NetNs; port: number };
    /** The LAN address the BMC reports for itself (Get LAN Configuration Parameters, in-band and over LAN). */
    lanAddress?: string;
  },
): Promise<IpmiSim> {
  mkdirSync(join(dir, 'state'), { recursive: true });
  copyFileSync(CHASSIS, join(dir, 'chassis.sh'));
  if (opts.qemuCmd) writeFileSync(join(dir, 'qemu.cmd'), opts.qemuCmd);
  if (opts.lanAddress) {
    // ipmi_sim's lan_config_program (ipmi_lan(5)): "get PARAM…" prints "PARAM:VALUE" lines.
    const values: Record<string, string> = { ip_addr_src: 'static', ip_addr: opts.lanAddress, mac_addr: '52:54:00:13:0b:01', subnet_mask: '255.255.255.0', default_gw_ip_addr: '0.0.0.0', default_gw_mac_addr: '00:00:00:00:00:00', backup_gw_ip_addr: '0.0.0.0', backup_gw_mac_addr: '00:00:00:00:00:00' };
    writeFileSync(join(dir, 'lan-config.sh'), `#!/bin/sh\n[ "$1" = get ] || exit 0\nshift\nfor p in "$@"; do case $p in\n${Object.entries(values).map(([k, v]) => `  ${k}) echo "${k}:${v}";;`).join('\n')}\nesac; done\n`, { mode: 0o755 });
  }
  const port = opts.netns?.port ?? (await freePort());
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
      ...(opts.lanAddress ? [`    lan_config_program "${join(dir, 'lan-config.sh')}"`] : []),
      '  endlan',
      ...(opts.serialPort ? [`  serial 15 127.0.0.1 ${opts.serialPort} codec VM`] : []),
      `  chassis_control "${join(dir, 'chassis.sh')}"`,
      `  user 2 true "admin" "${opts.password}" admin 10 none md2 md5 straight`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'bmc.emu'), ['mc_setbmc 0x20', 'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr', 'sel_enable 0x20 1000 0x0a', 'mc_enable 0x20', ''].join('\n'));
  const argv = ['ipmi_sim', '-c', join(dir, 'lan.conf'), '-f', join(dir, 'bmc.emu'), '-s', join(dir, 'state'), '-n'];
  const proc: ChildProcess = opts.netns ? opts.netns.ns.spawn(argv, { stdio: ['ignore', 'ignore', 'pipe'] }) : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
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

/** The pid of the QEMU the chassis script started (0 when none). */
export const vmPid = (sim: IpmiSim): number => Number(sim.file('qemu.pid')) || 0;

/** The process runs (a killed daemonized QEMU may linger as a zombie where no init reaps it). */
export function alive(pid: number): boolean {
  try {
    return pid > 0 && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Every file under `dir` (recursively) whose bytes contain `needle` (the password-leak check). */
export function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else if (s.isFile() && readFileSync(p).includes(needle)) hits.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return hits;
}
