// `underlay lab` end to end, with real firmware under QEMU software emulation: one BIOS machine (SeaBIOS +
// the e1000's iPXE ROM) and one UEFI machine (OVMF + virtio-net) PXE boot the discovery image from the
// lab's agent in a network namespace; the agent reaches the lab's own central through the unix-socket
// forwarders. Everything is read back through the CLI/API, as an operator would:
//   - both machines discovered, facts = the QEMU configuration (MAC, memory, CPUs, disk, -uuid, -smbios serial)
//   - a run-script task's output and exit code come back through agent and central (tasks show)
//   - a task with a bad signature never runs: reported failed/bad-signature, its side effect absent
//   - a reboot (signed `reboot` task) rediscovers the machine: one record for its MAC, facts updated
//     (a disk hot-added through the QEMU monitor before the reboot shows up)
//   - `lab down` leaves no namespace, process or runtime file behind
// Two boots plus one reboot; polls have hang-protection timeouts only.
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign as edSign } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';

const REPO = resolve(import.meta.dirname, '../..');
const CLI = join(REPO, 'dist/shared/cli/underlay.js');

const ready = checkPrereqs('underlay lab', {
  root: true,
  commands: ['qemu-system-x86_64', 'ip', 'busybox', 'apt-get', 'dpkg-deb', 'openssl', 'xz', 'truncate'],
  files: [
    '/usr/share/OVMF/OVMF_CODE.fd',
    '/usr/share/OVMF/OVMF_VARS.fd',
    '/usr/lib/ipxe/undionly.kpxe',
    '/usr/lib/ipxe/ipxe.efi',
    '/usr/lib/ipxe/snponly.efi',
    '/usr/lib/ipxe/qemu/pxe-e1000.rom',
  ],
});

// The QEMU configuration the lab is asked for; the facts must match it.
const MEMORY_MB = 512;
const CPUS = 1;
const DISK_GB = 1;
const VMS = [
  { name: 'm1', firmware: 'bios', driver: 'e1000', mac: '52:54:00:1a:b0:01', uuid: '4c414230-0000-4000-8000-000000000001', serial: 'UL-LAB-0001' },
  { name: 'm2', firmware: 'uefi', driver: 'virtio_net', mac: '52:54:00:1a:b0:02', uuid: '4c414230-0000-4000-8000-000000000002', serial: 'UL-LAB-0002' },
] as const;

// Hang protection only (no speed assertions). UEFI reaches its first DHCPDISCOVER after ~2.5 min here.
const BIOS_PATIENCE_MS = 6 * 60_000;
const UEFI_PATIENCE_MS = 9 * 60_000;
const TASK_PATIENCE_MS = 3 * 60_000;

interface Machine {
  id: string;
  name: string;
  site: string;
  macs: string[];
  uuid?: string;
  serial?: string;
  state: string;
  updatedAt: string;
  facts: {
    system?: { uuid?: string; serial?: string; vendor?: string; product?: string };
    firmware?: string;
    cpu?: { sockets?: number; cores?: number; threads?: number };
    memory?: { totalBytes?: number };
    disks?: { name: string; sizeBytes: number; serial?: string }[];
    nics?: { name: string; mac: string; driver?: string }[];
    bootMac?: string;
  };
}
interface Task {
  id: string;
  agent: string;
  site: string;
  machine: string;
  seq: number;
  kind: string;
  state: string;
  output?: string;
  exitCode?: number;
  expiresAt: string;
  history: { state: string; reason?: string }[];
}
interface LabStateFile {
  netns: string;
  agent: { state: string };
  processes: { role: string; pid: number }[];
  machines: { name: string; pid: number; serialLog: string; monitor: string }[];
  files: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function poll<T>(what: string, timeoutMs: number, probe: () => T | undefined | null | false, onTimeout: () => string = () => ''): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > until) throw new Error(`gave up after ${timeoutMs / 1000} s waiting for ${what}\n${onTimeout()}`);
    await sleep(2000);
  }
}

/** True while PID exists and is not a zombie (an exited child not yet reaped is gone for our purposes). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

describe.skipIf(!ready)('underlay lab: a virtual rack with real firmware', () => {
  let work: string;
  let labDir: string;
  let env: NodeJS.ProcessEnv;
  let state: LabStateFile;
  let upDone = false;
  const recordedPids: number[] = [];
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;

  const cli = (args: string[], opts: { env?: NodeJS.ProcessEnv; allowFail?: boolean } = {}) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: opts.env ?? env, maxBuffer: 64 << 20 });
    if (r.status !== 0 && !opts.allowFail) throw new Error(`underlay ${args.join(' ')} exited ${r.status}:\n${r.stderr}\n${r.stdout}`);
    return r;
  };
  const json = <T>(args: string[]): T => JSON.parse(cli([...args, '-o', 'json']).stdout) as T;
  const machineByMac = (mac: string) => json<{ items: Machine[] }>(['machines', 'list', '--site', 'lab', '--mac', mac]).items;
  const serialLog = (vm: string) => {
    const p = join(labDir, `${vm}.serial.log`);
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  };
  const diagnose = (vm: string) => () =>
    `--- ${vm} serial (tail) ---\n${serialLog(vm).split('\n').slice(-25).join('\n')}\n--- agent log (warnings) ---\n${
      existsSync(join(labDir, 'agent.log'))
        ? readFileSync(join(labDir, 'agent.log'), 'utf8')
            .split('\n')
            .filter((l) => l && !l.includes('"level":30'))
            .slice(-15)
            .join('\n')
        : ''
    }`;
  const waitTask = (id: string) =>
    poll(`task ${id} to finish`, TASK_PATIENCE_MS, () => {
      const t = json<Task>(['tasks', 'show', id]);
      return ['succeeded', 'failed', 'rejected', 'expired', 'cancelled'].includes(t.state) ? t : undefined;
    });
  const runScript = async (machine: string, script: string) => {
    const f = join(work, `script-${Date.now()}.sh`);
    writeFileSync(f, script);
    const t = json<Task>(['tasks', 'create', '--site', 'lab', '--kind', 'run-script', '--machine', machine, '--script-file', f]);
    return waitTask(t.id);
  };
  const discovered = (vm: (typeof VMS)[number], patience: number) =>
    poll(`${vm.name} (${vm.firmware}) to be discovered`, patience, () => machineByMac(vm.mac)[0], diagnose(vm.name));

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p . && node scripts/postbuild.mjs" first`);
    work = mkdtempSync(join(tmpdir(), 'underlay-lab-test-'));
    labDir = join(work, 'lab');
    // The lab's own central: the test must not depend on, or write into, a central someone else runs.
    const clean: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('UNDERLAY_')) clean[k] = v;
    const up = cli(
      ['lab', 'up', '--dir', labDir, '--own-central', '--machines', '2', '--firmware', 'mixed', '--memory', String(MEMORY_MB), '--cpus', String(CPUS), '--disk', String(DISK_GB)],
      { env: clean, allowFail: true },
    );
    if (existsSync(join(labDir, 'state.json'))) {
      state = JSON.parse(readFileSync(join(labDir, 'state.json'), 'utf8')) as LabStateFile;
      recordedPids.push(...state.processes.map((p) => p.pid), ...state.machines.map((m) => m.pid));
    }
    if (up.status !== 0) throw new Error(`lab up failed:\n${up.stderr}\n${up.stdout}`);
    upDone = true;
    expect(up.stdout).toContain('underlay lab console m1');
    expect(up.stdout).toContain('underlay machines list');
    env = { ...clean };
    for (const line of cli(['lab', 'env', '--dir', labDir], { env: clean }).stdout.trim().split('\n')) {
      const m = /^export (UNDERLAY_[A-Z]+)='(.*)'$/.exec(line);
      if (m) env[m[1]!] = m[2]!;
    }
    expect(env.UNDERLAY_URL).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    console.log(`[lab] up after ${elapsed()}: namespace ${state.netns}, ${state.processes.length} processes + ${state.machines.length} VMs recorded`);
  });

  afterAll(async () => {
    // Cleanup even on failure: lab down by its state, then whatever the state file named, then our files.
    if (labDir && existsSync(join(labDir, 'state.json'))) cli(['lab', 'down', '--dir', labDir], { env: env ?? process.env, allowFail: true });
    for (const pid of recordedPids) {
      if (pidAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    if (state?.netns && execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(state.netns)) {
      spawnSync('ip', ['netns', 'del', state.netns]);
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the BIOS machine is discovered with facts matching its QEMU configuration', async () => {
    expect(upDone).toBe(true);
    const vm = VMS[0];
    const m = await discovered(vm, BIOS_PATIENCE_MS);
    console.log(`[lab] ${vm.name} (bios) discovered after ${elapsed()}`);
    expect(m.site).toBe('lab');
    expect(m.macs).toEqual([vm.mac]);
    expect(m.uuid).toBe(vm.uuid);
    expect(m.serial).toBe(vm.serial);
    expect(m.facts.system).toMatchObject({ uuid: vm.uuid, serial: vm.serial });
    expect(m.facts.firmware).toBe('bios');
    expect(m.facts.cpu?.threads).toBe(CPUS);
    expect(m.facts.memory?.totalBytes).toBe(MEMORY_MB * 1024 * 1024);
    expect(m.facts.disks?.map((d) => d.sizeBytes)).toEqual([DISK_GB * 1024 ** 3]);
    expect(m.facts.nics).toEqual([expect.objectContaining({ mac: vm.mac, driver: vm.driver })]);
    expect(m.facts.bootMac).toBe(vm.mac);
    expect(serialLog(vm.name)).toMatch(new RegExp(`underlay: discovered ${vm.mac} \\(uuid ${vm.uuid}, ${CPUS} cpus, ${MEMORY_MB} MiB, 1 disks\\)`));
    // lab status sees it too: the VM, its phase and its machine record.
    const st = json<{ machines: { name: string; running: boolean; phase: string; discovered?: { name: string } }[]; agent: { running: boolean } }>(['lab', 'status', '--dir', labDir]);
    expect(st.agent.running).toBe(true);
    expect(st.machines.find((x) => x.name === vm.name)).toMatchObject({ running: true, discovered: { name: m.name } });
  });

  it('a run-script task runs on the machine; output and exit code come back through agent and central', async () => {
    const m = machineByMac(VMS[0].mac)[0]!;
    const t = await runScript(m.name, 'echo "hello from $(cat /sys/class/dmi/id/product_serial) as $UNDERLAY_MACHINE"\necho to-stderr >&2\nexit 3\n');
    expect(t.state).toBe('failed');
    expect(t.exitCode).toBe(3);
    expect(t.output).toBe(`hello from ${VMS[0].serial} as ${m.id}\nto-stderr\n`);
    expect(t.history.map((h) => h.state)).toEqual(expect.arrayContaining(['delivered', 'accepted', 'running', 'failed']));
    const ok = await runScript(m.name, 'echo ok\n');
    expect(ok).toMatchObject({ state: 'succeeded', exitCode: 0, output: 'ok\n' });
  });

  it('the UEFI machine is discovered with facts matching its QEMU configuration', async () => {
    const vm = VMS[1];
    const m = await discovered(vm, UEFI_PATIENCE_MS);
    console.log(`[lab] ${vm.name} (uefi) discovered after ${elapsed()}`);
    expect(m.macs).toEqual([vm.mac]);
    expect(m.uuid).toBe(vm.uuid);
    expect(m.serial).toBe(vm.serial);
    expect(m.facts.system).toMatchObject({ uuid: vm.uuid, serial: vm.serial });
    expect(m.facts.firmware).toBe('uefi');
    expect(m.facts.cpu?.threads).toBe(CPUS);
    expect(m.facts.memory?.totalBytes).toBe(MEMORY_MB * 1024 * 1024);
    expect(m.facts.disks?.map((d) => d.sizeBytes)).toEqual([DISK_GB * 1024 ** 3]);
    expect(m.facts.nics).toEqual([expect.objectContaining({ mac: vm.mac, driver: vm.driver })]);
    // Exactly the two lab machines exist.
    expect(json<{ items: Machine[] }>(['machines', 'list', '--site', 'lab']).items.map((x) => x.macs[0]).sort()).toEqual(VMS.map((v) => v.mac));
  });

  it('a task with a bad signature never runs: the runner reports bad-signature and its side effect is absent', async () => {
    // Injection point: the agent's durable machine queue on disk (machine-tasks.jsonl). The architecture
    // says the signature protects a task "even where the pipe is not the central's (relays, proxies,
    // replays from disk)". Scenario: the agent accepted task T for the machine and went down before the
    // machine took it; while it was down, someone with write access to its disk replaced the queued
    // envelope with one carrying another script, signed with a key that is not the central's. The
    // agent hands queued envelopes to the runner as they are (by design it does not re-verify), so only
    // the machine's own check stands between the forgery and execution.
    const m = machineByMac(VMS[0].mac)[0]!;
    const agentState = state.agent.state;
    cli(['lab', 'agent', 'stop', '--dir', labDir]);
    const marker = '/tmp/underlay-forged-ran';
    const legit = join(work, 'legit.sh');
    writeFileSync(legit, 'echo legit\n');
    const t = json<Task>(['tasks', 'create', '--site', 'lab', '--kind', 'run-script', '--machine', m.name, '--script-file', legit]);
    expect(t.state).toBe('queued'); // the agent is down: the central holds it
    const { privateKey } = generateKeyPairSync('ed25519'); // not the central's key
    const envelope = {
      v: 1,
      id: t.id,
      site: t.site,
      agent: t.agent,
      seq: t.seq,
      kind: 'run-script',
      machine: m.id,
      payload: { scriptB64: Buffer.from(`touch ${marker}\necho forged\n`).toString('base64') },
      issuedAt: new Date().toISOString(),
      expiresAt: t.expiresAt,
    };
    const bytes = Buffer.from(canonical(envelope), 'utf8');
    const signed = { canonical: bytes.toString('base64'), signature: edSign(null, bytes, privateKey).toString('base64') };
    // The on-disk state of "accepted T, queued it for the machine" (task log + machine queue records),
    // with the forged envelope in the queue.
    appendFileSync(join(agentState, 'tasks.jsonl'), JSON.stringify({ id: t.id, seq: t.seq, kind: 'run-script', machine: m.id, state: 'accepted', at: new Date().toISOString() }) + '\n');
    appendFileSync(join(agentState, 'machine-tasks.jsonl'), JSON.stringify({ t: 'add', task: { id: t.id, machine: m.id, kind: 'run-script', signed, expiresAt: t.expiresAt } }) + '\n');
    cli(['lab', 'agent', 'start', '--dir', labDir]);
    // The lab recorded the restarted agent: lab down must stop that one too.
    const now = JSON.parse(readFileSync(join(labDir, 'state.json'), 'utf8')) as LabStateFile;
    recordedPids.push(...now.processes.filter((p) => p.role === 'agent').map((p) => p.pid));

    const done = await waitTask(t.id);
    expect(done.state).toBe('failed');
    expect(done.output).toBe('bad-signature');
    expect(done.history.map((h) => h.state)).not.toContain('running'); // never started
    await poll('the refusal on the console', 60_000, () => serialLog(VMS[0].name).includes(`task ${t.id} refused: bad-signature`), diagnose(VMS[0].name));
    // Neither the forged script nor (the id being spent on this agent) the legit one ran.
    expect(serialLog(VMS[0].name)).not.toContain(`task ${t.id} (run-script) running`);
    const check = await runScript(m.name, `if [ -e ${marker} ]; then echo PRESENT; else echo ABSENT; fi\n`);
    expect(check).toMatchObject({ state: 'succeeded', output: 'ABSENT\n' });
  });

  it('a reboot rediscovers the machine: one record for its MAC, facts updated', async () => {
    const vm = VMS[0];
    const [before] = machineByMac(vm.mac);
    expect(before!.facts.disks).toHaveLength(1);
    const discoveredLines = (serialLog(vm.name).match(/underlay: discovered /g) ?? []).length;
    // New hardware while it runs (hot-added disk, through the QEMU monitor): the next discovery must report it.
    const extra = join(labDir, 'extra-disk.img');
    execFileSync('truncate', ['-s', '2G', extra]);
    expect(cli(['lab', 'monitor', vm.name, 'drive_add', '0', `if=none,id=extra,file=${extra},format=raw`, '--dir', labDir]).stdout).toMatch(/OK/);
    cli(['lab', 'monitor', vm.name, 'device_add', 'virtio-blk-pci,drive=extra,id=extra0,serial=EXTRA-DISK', '--dir', labDir]);
    const t = json<Task>(['tasks', 'create', '--site', 'lab', '--kind', 'reboot', '--machine', before!.name]);
    expect((await waitTask(t.id)).state).toBe('succeeded');
    const after = await poll(
      `${vm.name} to be rediscovered after the reboot`,
      BIOS_PATIENCE_MS,
      () => {
        const ms = machineByMac(vm.mac);
        return ms.length === 1 && ms[0]!.updatedAt > before!.updatedAt && ms[0]!.facts.disks?.length === 2 ? ms[0] : undefined;
      },
      diagnose(vm.name),
    );
    console.log(`[lab] ${vm.name} rediscovered after ${elapsed()}`);
    expect((serialLog(vm.name).match(/underlay: discovered /g) ?? []).length).toBeGreaterThan(discoveredLines); // it really booted again
    expect(after!.id).toBe(before!.id);
    expect(after!.name).toBe(before!.name);
    expect(after!.facts.disks).toEqual(
      expect.arrayContaining([expect.objectContaining({ sizeBytes: DISK_GB * 1024 ** 3 }), expect.objectContaining({ sizeBytes: 2 * 1024 ** 3, serial: 'EXTRA-DISK' })]),
    );
    expect(json<{ items: Machine[] }>(['machines', 'list', '--site', 'lab']).items).toHaveLength(2);
    // The runner came back too: tasks still reach the rebooted machine.
    expect(await runScript(after!.name, 'echo back\n')).toMatchObject({ state: 'succeeded', output: 'back\n' });
  });

  it('lab down leaves no namespace, process or runtime file behind (the image cache stays)', async () => {
    const now = JSON.parse(readFileSync(join(labDir, 'state.json'), 'utf8')) as LabStateFile;
    const pids = [...now.processes.map((p) => p.pid), ...now.machines.map((m) => m.pid)];
    expect(pids.length).toBe(6); // central, 2 forwarders, agent, 2 VMs
    for (const p of pids) expect(pidAlive(p)).toBe(true);
    const image = (JSON.parse(readFileSync(join(labDir, 'state.json'), 'utf8')) as { image: string }).image;
    // A file that is not the lab's must survive.
    writeFileSync(join(labDir, 'not-the-labs.txt'), 'keep me\n');
    rmSync(join(labDir, 'extra-disk.img'));
    const r = cli(['lab', 'down', '--dir', labDir]);
    expect(r.stderr).toMatch(/lab down: stopped \d+ process/);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(now.netns);
    await poll('the recorded processes to be gone', 30_000, () => pids.every((p) => !pidAlive(p)));
    for (const p of [...pids, ...recordedPids]) expect(pidAlive(p)).toBe(false);
    expect(readdirSync(labDir)).toEqual(['not-the-labs.txt']);
    expect(existsSync(join(image, 'vmlinuz')) && existsSync(join(image, 'initrd.img'))).toBe(true);
    // Nothing left for status to find.
    expect(cli(['lab', 'status', '--dir', labDir], { allowFail: true }).status).not.toBe(0);
  });
});
