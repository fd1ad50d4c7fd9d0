import { closeSync, openSync, readSync, statSync, existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { cliEnv, defaultLabDir, labDown, labStatus, labUp, monitorCommand, readState, startAgentProcess, stopAgentProcess, type LabState } from './lab.js';
import type { Firmware } from './prereqs.js';

interface Globals {
  url?: string;
  token?: string;
  ca?: string;
  output?: string;
}

const dirOption = () => new Option('--dir <dir>', 'lab directory: state, logs, disks (env UNDERLAY_LAB_DIR)').default(defaultLabDir(), './.underlay-lab');

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer (got "${v}")`);
    return n;
  };
}

function fail(e: unknown): void {
  process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exitCode = 1;
}

function needState(dir: string): LabState {
  const s = readState(dir);
  if (!s) throw new Error(`no lab in ${dir} (start one with "sudo npx underlay lab up --machines 2")`);
  return s;
}

function findMachine(s: LabState, name: string) {
  const m = s.machines.find((x) => x.name === name || x.mac === name.toLowerCase());
  if (!m) throw new Error(`no machine "${name}" in this lab (machines: ${s.machines.map((x) => x.name).join(', ') || 'none'})`);
  return m;
}

const shellQuote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

/** `underlay lab up|status|console|down|env|agent|monitor`. */
export function register(program: Command): void {
  const lab = program.command('lab').description('a virtual rack on this host: namespace, agent, QEMU machines that PXE boot (root)');

  lab
    .command('up')
    .description('start the lab in the background: network namespace, central, site, agent, N PXE-booting QEMU machines')
    .option('--machines <n>', 'how many machines', int('machines'), 2)
    .addOption(new Option('--firmware <kind>', 'bios (SeaBIOS + iPXE ROM), uefi (OVMF), mixed (alternating)').choices(['bios', 'uefi', 'mixed']).default('bios'))
    .option('--memory <mb>', 'memory per machine, MB', int('memory'), 1024)
    .option('--cpus <n>', 'CPUs per machine', int('cpus'), 1)
    .option('--disk <gb>', 'sparse disk per machine, GB', int('disk'), 8)
    .option('--site <name>', 'site name', 'lab')
    .option('--own-central', "start the lab's own central even if one is reachable")
    .addOption(dirOption())
    .action(async (o: { machines: number; firmware: Firmware; memory: number; cpus: number; disk: number; site: string; ownCentral?: boolean; dir: string }, cmd: Command) => {
      try {
        const g = cmd.optsWithGlobals<Globals>();
        const s = await labUp({
          dir: o.dir,
          machines: o.machines,
          firmware: o.firmware,
          memoryMb: o.memory,
          cpus: o.cpus,
          diskGb: o.disk,
          site: o.site,
          ownCentral: !!o.ownCentral,
          client: { url: g.url, token: g.token, ca: g.ca },
        });
        const dirFlag = o.dir === defaultLabDir() ? '' : ` --dir ${shellQuote(o.dir)}`;
        const lines = [
          '',
          `The lab is up (state: ${s.dir}/state.json). Machines PXE boot the discovery image now:`,
          `BIOS machines report in a minute or two, UEFI ones in two to four (software emulation).`,
          '',
          'Next:',
        ];
        if (s.central.own) lines.push(`  eval "$(underlay lab env${dirFlag})"        # point the CLI at the lab's own central`);
        lines.push(
          `  underlay lab status${dirFlag}              # VMs, agent, machines discovered so far`,
          `  underlay machines list --site ${s.site}       # the inventory, with hardware facts`,
          ...s.machines.slice(0, 1).map((m) => `  underlay lab console ${m.name} -f${dirFlag}         # ${m.name}'s serial console`),
          `  underlay tasks create --site ${s.site} --kind run-script --machine <name> --script-file hello.sh`,
          `  underlay lab down${dirFlag}                # stop everything, remove the namespace and the lab's files`,
        );
        process.stdout.write(lines.join('\n') + '\n');
      } catch (e) {
        fail(e);
      }
    });

  lab
    .command('status')
    .description('the VMs and their state, the agent, machines discovered so far (from the API)')
    .addOption(dirOption())
    .action(async (o: { dir: string }, cmd: Command) => {
      try {
        const g = cmd.optsWithGlobals<Globals>();
        const st = await labStatus(o.dir, { url: g.url, token: g.token, ca: g.ca });
        if (g.output === 'json' || (!g.output && !process.stdout.isTTY)) {
          process.stdout.write(JSON.stringify(st, null, 2) + '\n');
          return;
        }
        const out: string[] = [];
        out.push(`lab ${st.dir}: namespace ${st.netns} ${st.netnsUp ? 'up' : 'MISSING'}`);
        out.push(`central ${st.central.url} (${st.central.own ? "the lab's own" : 'shared'}) ${st.central.reachable ? 'reachable' : 'NOT reachable'}`);
        out.push(`agent ${st.agent.name} ${st.agent.running ? 'running' : 'NOT running'}${st.agent.connected === undefined ? '' : st.agent.connected ? ', connected to the central' : ', not connected'}`);
        for (const p of st.processes) if (!p.alive) out.push(`  ! ${p.role} (pid ${p.pid}) is not running`);
        out.push('', 'VM    firmware  MAC                pid      state  phase                                machine record');
        for (const m of st.machines) {
          out.push(
            `${m.name.padEnd(5)} ${m.firmware.padEnd(9)} ${m.mac}  ${String(m.pid ?? '-').padEnd(8)} ${(m.running ? 'up' : 'down').padEnd(6)} ${m.phase.padEnd(36)} ${m.discovered ? `${m.discovered.name} (${m.discovered.state})` : '-'}`,
          );
        }
        out.push('', `machines discovered at site (${st.discovered.length}):`);
        for (const d of st.discovered) out.push(`  ${d.name}  ${d.macs.join(',')}  ${d.state}  ${d.cpus ?? '?'} CPU  ${d.memoryMiB ?? '?'} MiB  ${d.disks ?? '?'} disk(s)`);
        process.stdout.write(out.join('\n') + '\n');
      } catch (e) {
        fail(e);
      }
    });

  lab
    .command('console <machine>')
    .description("a machine's serial console log (-f to follow)")
    .option('-f, --follow', 'keep printing what the machine writes (Ctrl-C to stop)')
    .addOption(dirOption())
    .action(async (name: string, o: { follow?: boolean; dir: string }) => {
      try {
        const m = findMachine(needState(o.dir), name);
        let pos = 0;
        const pump = () => {
          if (!existsSync(m.serialLog)) return;
          const size = statSync(m.serialLog).size;
          if (size < pos) pos = 0; // truncated: the machine was restarted
          if (size === pos) return;
          const fd = openSync(m.serialLog, 'r');
          try {
            const buf = Buffer.alloc(size - pos);
            readSync(fd, buf, 0, buf.length, pos);
            pos = size;
            process.stdout.write(buf);
          } finally {
            closeSync(fd);
          }
        };
        pump();
        if (!o.follow) return;
        await new Promise<void>((resolve) => {
          const t = setInterval(pump, 300);
          const stop = () => {
            clearInterval(t);
            resolve();
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      } catch (e) {
        fail(e);
      }
    });

  lab
    .command('down')
    .description("stop every process the lab started, delete its namespace, remove its files (keeps the image cache)")
    .addOption(dirOption())
    .action(async (o: { dir: string }, cmd: Command) => {
      try {
        const g = cmd.optsWithGlobals<Globals>();
        await labDown(o.dir, { client: { url: g.url, token: g.token, ca: g.ca } });
      } catch (e) {
        fail(e);
      }
    });

  lab
    .command('env')
    .description("print the UNDERLAY_URL/TOKEN/CA exports for the lab's central (eval \"$(underlay lab env)\")")
    .addOption(dirOption())
    .action((o: { dir: string }, cmd: Command) => {
      try {
        const g = cmd.optsWithGlobals<Globals>();
        const env = cliEnv(needState(o.dir), { url: g.url, token: g.token, ca: g.ca });
        process.stdout.write(Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`).join('\n') + '\n');
      } catch (e) {
        fail(e);
      }
    });

  lab
    .command('agent <action>')
    .description("stop or start the lab's agent (start | stop | restart): e.g. to see a site ride out an agent outage")
    .addOption(dirOption())
    .action(async (action: string, o: { dir: string }) => {
      try {
        const s = needState(o.dir);
        if (!['start', 'stop', 'restart'].includes(action)) throw new Error('action must be start, stop or restart');
        if (action !== 'start') await stopAgentProcess(s);
        if (action !== 'stop') await startAgentProcess(s);
        process.stdout.write(`agent ${action === 'stop' ? 'stopped' : 'running'}\n`);
      } catch (e) {
        fail(e);
      }
    });

  lab
    .command('monitor <machine> <command...>')
    .description("send a command to a machine's QEMU monitor, e.g. system_reset, 'info status'")
    .addOption(dirOption())
    .action(async (name: string, words: string[], o: { dir: string }) => {
      try {
        const m = findMachine(needState(o.dir), name);
        const out = await monitorCommand(m.monitor, words.join(' '));
        if (out) process.stdout.write(out + '\n');
      } catch (e) {
        fail(e);
      }
    });
}
