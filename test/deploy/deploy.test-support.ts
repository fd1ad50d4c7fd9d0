/**
 * One machine's deploy walk on real firmware (QEMU TCG) through a real central and site agent, driven the
 * way an operator drives it: `underlay machines deploy|wait|release|events`, `underlay tasks create` for
 * run-script and poweroff. test/deploy/deploy.test.ts runs a BIOS and a UEFI machine through it at the same
 * time in one rack. Asserted from the serial log, the central (CLI) and the disk image itself (debugfs,
 * no mount, after a clean poweroff).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { AGENT_ADDRESS, Rack, SITE, until, type Vm } from '../e2e/rack.js';
import { debugfs, type Built } from '../images/debian-image.test-support.js';
import type { Rendezvous } from '../support/journey.js';

export const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8xO2vU0hQ0v6N7kKX0r4cQ9x1Yb2m3n4o5p6q7r8s ops@underlay-test';
export const FILE_BODY = 'written by cloud-init from an Underlay param\n';
export const IGNITION_BODY = 'written by Ignition from an Underlay param\n';
export const GOOD_IMAGE = 'debian-12-test';
export const FLIPPED_IMAGE = 'debian-12-flipped';
const MIN = 60_000;

export interface Task {
  id: string;
  state: string;
  reason?: string;
  output?: string;
  progress?: { phase: string; bytesWritten?: number; rawSize?: number; rateBytesPerSec?: number };
}

interface MachineView {
  id: string;
  name: string;
  state: string;
  netboot?: boolean;
  addresses?: Array<{ address: string; source?: string }>;
  stateReason?: string;
  [k: string]: unknown;
}

export interface WalkOptions {
  firmware: 'bios' | 'uefi';
  mac: string;
  /** The machine's name and hostname after discovery. */
  name: string;
  /** Also deploy the image with one flipped byte first (refused). */
  flipped?: boolean;
  /** After the release, deploy again configured by Ignition. */
  ignition?: boolean;
  /** Meet the other machines here and run the Ansible playbook on all of them through the agent. */
  ansible?: Rendezvous<PlaybookRun>;
}

export interface PlaybookRun {
  code: number | null;
  output: string;
}

/** What each step proves (the tests' titles). */
export const STEP_TITLES: Record<string, string> = {
  discover: 'PXE boots, is discovered, becomes ready with its boot address; the agent has the image',
  flipped: 'an image with one flipped byte is refused (hash-mismatch): failed with the reason, netboot stays on',
  deploy: 'machines deploy: written and verified with progress, netboot off, boots its disk, wait --state deployed',
  'first-boot': 'cloud-init applied hostname, user, key and file; a run-script task runs in the installed OS',
  ansible: 'ansible-playbook through the agent (no SSH server on the machine): ping, setup, copy, template, command, systemd, a handler',
  disk: 'after a signed poweroff, the disk itself: grown root, seed URL, runner config 0600, cloud-init results',
  release: 'machines release: the installed runner wipes the disk, netboot on, discovery again, ready',
  ignition: 'deploy configured by the real Ignition (debian-ignition): user, key, file and an enabled unit',
};

/** Params for the cloud-init deploys: a user with a key and a file (checked in the OS and on the disk). */
export function cloudInitParams(): string[] {
  const params = [
    `users=${JSON.stringify([{ name: 'ops', shell: '/bin/bash', lock_passwd: true, ssh_authorized_keys: [KEY] }])}`,
    `write_files=${JSON.stringify([{ path: '/etc/underlay-test.txt', content: FILE_BODY, permissions: '0640' }])}`,
  ];
  return params.flatMap((p) => ['--param', p]);
}

/** The machine walk's steps, in order. */
export function walkSteps(o: WalkOptions): string[] {
  return ['discover', ...(o.flipped ? ['flipped'] : []), 'deploy', 'first-boot', ...(o.ansible ? ['ansible'] : []), 'disk', 'release', ...(o.ignition ? ['ignition'] : [])];
}

/** Pushes the images every walk uses: the good one with `images push`, the flipped one claiming the good raw hash. */
export function pushImages(rack: Rack, image: Built): void {
  rack.cli(['images', 'push', join(image.dir, 'disk.raw.zst'), '--name', GOOD_IMAGE]);
  // 64 MiB of the real disk with one byte flipped, described (format, raw sha256, raw size) as the
  // unflipped bytes: what a corrupted store or a tampered upload looks like to the runner.
  const small = join(rack.work, 'small.raw');
  execFileSync('dd', [`if=${join(image.dir, 'disk.raw')}`, `of=${small}`, 'bs=1M', 'count=64', 'status=none']);
  const rawSha256 = execFileSync('sha256sum', [small], { encoding: 'utf8' }).split(' ')[0]!;
  const at = 32 * 1024 * 1024 + 4321;
  const byte = execFileSync('dd', [`if=${small}`, 'bs=1', `skip=${at}`, 'count=1', 'status=none'])[0]!;
  execFileSync('dd', [`of=${small}`, 'bs=1', `seek=${at}`, 'count=1', 'conv=notrunc', 'status=none'], { input: Buffer.from([byte ^ 0x01]) });
  execFileSync('zstd', ['-q', '-3', '-f', small, '-o', `${small}.zst`]);
  const sha256 = execFileSync('sha256sum', [`${small}.zst`], { encoding: 'utf8' }).split(' ')[0]!;
  writeFileSync(join(rack.work, 'auth.header'), `Authorization: Bearer ${readFileSync(join(rack.work, 'central', 'admin.token'), 'utf8').trim()}\n`, { mode: 0o600 });
  const q = `name=${FLIPPED_IMAGE}&format=zstd&rawSha256=${rawSha256}&rawSize=${64 * 1024 * 1024}`;
  execFileSync('ip', ['netns', 'exec', rack.ns.name, 'curl', '-sS', '-f', '--cacert', join(rack.work, 'central', 'ca.pem'), '-H', `@${join(rack.work, 'auth.header')}`, '-T', `${small}.zst`, `https://127.0.0.1:8443/api/v1/artifacts/${sha256}?${q}`], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The walk of one machine; each method is one step of walkSteps(). */
export class MachineWalk {
  vm!: Vm;
  id!: string;
  readonly disk: string;
  private deployTask?: string;
  private boots = 0;

  constructor(
    readonly rack: Rack,
    readonly image: Built,
    readonly o: WalkOptions,
  ) {
    this.disk = join(rack.work, `${o.name}.disk.raw`);
    execFileSync('truncate', ['-s', '3G', this.disk]);
  }

  steps(): Array<readonly [string, () => Promise<void>]> {
    const all: Record<string, () => Promise<void>> = {
      discover: () => this.discover(),
      flipped: () => this.flipped(),
      deploy: () => this.deploy(),
      'first-boot': () => this.firstBoot(),
      ansible: () => this.ansible(),
      disk: () => this.diskChecks(),
      release: () => this.release(),
      ignition: () => this.ignition(),
    };
    return walkSteps(this.o).map((s) => [s, all[s]!] as const);
  }

  private boot(): Vm {
    this.vm = this.rack.bootVm({ name: `${this.o.name}-${++this.boots}`, firmware: this.o.firmware, mac: this.o.mac, memMiB: 1024, disk: this.disk, allowReboot: true, guardSeconds: 4 * 3600 });
    return this.vm;
  }

  private machine(): MachineView {
    return this.rack.cliJson(['machines', 'show', this.id]) as MachineView;
  }

  private task(id: string): Task {
    return this.rack.cliJson(['tasks', 'show', id]) as Task;
  }

  private async taskDone(id: string, what: string, timeoutMs: number): Promise<Task> {
    return until(
      () => {
        const t = this.task(id);
        return ['failed', 'succeeded', 'rejected', 'expired', 'cancelled'].includes(t.state) ? t : undefined;
      },
      what,
      timeoutMs,
      { intervalMs: 3000, diag: () => this.vm.serial().slice(-3000) },
    );
  }

  private runTask(kind: string, extra: string[]): string {
    return (this.rack.cliJson(['tasks', 'create', '--site', SITE, '--machine', this.id, '--kind', kind, ...extra]) as Task).id;
  }

  /** `underlay machines wait NAME --state S`: its exit code and output. */
  private wait(state: string, timeout: string) {
    return this.rack.cliAsync(['machines', 'wait', this.o.name, '--state', state, '--timeout', timeout, '-o', 'json']);
  }

  private async deployAction(args: string[]): Promise<string> {
    const r = this.rack.cliJson(['machines', 'deploy', this.o.name, ...args]) as { machine: MachineView; task: Task };
    expect(r.machine.state).toBe('deploying');
    return r.task.id;
  }

  /** Unknown VM PXE boots, is discovered and becomes ready with its boot address; gets its name. */
  async discover(): Promise<void> {
    this.boot();
    await this.vm.waitForSerial(/underlay: discovered /, 'discovery', 20 * MIN);
    const m = (await until(() => this.rack.machines(this.o.mac)[0], 'the machine at the central', 2 * MIN)) as unknown as MachineView;
    this.id = m.id;
    this.rack.cli(['machines', 'update', this.id, '--name', this.o.name]);
    const ready = await until(() => (this.machine().state === 'ready' ? this.machine() : undefined), 'the machine to be ready (facts in)', 2 * MIN);
    expect(ready.addresses?.map((a) => a.address).join(' ')).toMatch(/198\.18\.0\.\d+/);
    const files = join(this.rack.work, 'boot', 'sha256');
    const good = (this.rack.cliJson(['images', 'show', GOOD_IMAGE]) as { sha256: string }).sha256;
    await until(() => existsSync(join(files, good)), 'the agent to sync the image', 10 * MIN, { intervalMs: 2000 });
  }

  /** An image with one flipped byte: the runner refuses it, the machine fails with the reason, netboot stays on. */
  async flipped(): Promise<void> {
    const files = join(this.rack.work, 'boot', 'sha256');
    const bad = (this.rack.cliJson(['images', 'show', FLIPPED_IMAGE]) as { sha256: string }).sha256;
    await until(() => existsSync(join(files, bad)), 'the agent to sync the flipped image', 10 * MIN, { intervalMs: 2000 });
    const waiting = this.wait('deployed', '20m');
    const id = await this.deployAction(['--image', FLIPPED_IMAGE, '--disk', '/dev/vda']);
    const w = await waiting;
    expect(w.code, w.stderr).toBe(5); // the machine failed
    const t = this.task(id);
    expect(t.state).toBe('failed');
    expect(t.reason).toBe('hash-mismatch');
    const m = this.machine();
    expect(m.state).toBe('failed');
    expect(m.stateReason).toMatch(/hash-mismatch/);
    expect(m.netboot).toBe(true);
    expect(this.vm.serial()).toMatch(/task \S+ \(image-deploy\) failed: hash-mismatch/);
    expect(this.rack.agentLines().some((l) => l.msg?.startsWith('image deployed') && l.machine === this.id)).toBe(false);
  }

  /** `machines deploy` → the runner writes and verifies with progress → netboot off → the disk boots → cloud-init → deployed. */
  async deploy(): Promise<void> {
    // wait starts after the action: from failed (the flipped image) it would exit 5 at once.
    this.deployTask = await this.deployAction(['--image', GOOD_IMAGE, '--disk', '/dev/vda', ...cloudInitParams()]);
    const waiting = this.wait('deployed', '60m');
    const seen: NonNullable<Task['progress']>[] = [];
    const t = await until(
      () => {
        const x = this.task(this.deployTask!);
        if (x.progress) seen.push(x.progress);
        return ['failed', 'succeeded'].includes(x.state) ? x : undefined;
      },
      'the image-deploy task',
      30 * MIN,
      { intervalMs: 3000, diag: () => this.vm.serial().slice(-3000) },
    );
    expect(t.state, t.output).toBe('succeeded');
    expect(t.output).toContain(`sha256 ${this.image.manifest.raw.sha256} verified`);
    expect(seen.some((p) => p.phase === 'write' && (p.bytesWritten ?? 0) > 0 && (p.rateBytesPerSec ?? 0) > 0)).toBe(true);
    await this.rack.waitForAgent((l) => l.msg === 'image deployed: netboot off, the machine boots its disk' && l.machine === this.id, 'netboot off at the agent', MIN, this.vm);
    const w = await waiting;
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).toMatch(/deploying → deployed|deployed/);
    // The machine rebooted into the installed kernel from its disk, started by the image's own loader:
    // syslinux on SeaBIOS (its banner), systemd-boot on OVMF (`initrd=\\initrd.img`), root by the image's UUID.
    const serial = this.vm.serial();
    const root = this.image.manifest.partitions.find((p) => p.name === 'root')!;
    expect(serial).toMatch(/Linux version [\s\S]*Linux version /);
    expect(serial).toContain(`Linux version ${this.image.manifest.kernelRelease}`);
    expect(serial).toMatch(new RegExp(`Command line: .*root=UUID=${root.fsUuid}`));
    if (this.o.firmware === 'bios') expect(serial).toContain('SYSLINUX');
    else expect(serial).toMatch(new RegExp(`Command line: initrd=\\\\initrd\\.img root=UUID=${root.fsUuid}`)); // systemd-boot's EFI path
    const m = this.machine();
    expect(m.state).toBe('deployed');
    expect(JSON.stringify(m.addresses)).toMatch(/198\.18\.0\.\d+/);
    const events = (this.rack.cliJson(['machines', 'events', this.o.name]) as { items: Array<{ from?: string; to: string; cause: { kind: string; taskId?: string } }> }).items;
    expect(events.map((e) => e.to)).toEqual(expect.arrayContaining(['ready', 'deploying', 'deployed']));
    expect(events.find((e) => e.to === 'deploying' && e.cause.taskId === this.deployTask)).toBeDefined();
  }

  /**
   * A deploy rides out the central's death and an agent restart in the middle of the write: the agent holds
   * the image and the task, the runner resumes its download from the restarted agent, netboot goes off and
   * the installed OS boots and reports with the central still down; the central learns `deployed` from the
   * agent's outbox when it is back.
   */
  async deployThroughOutage(): Promise<void> {
    this.deployTask = await this.deployAction(['--image', GOOD_IMAGE, '--disk', '/dev/vda', ...cloudInitParams()]);
    await until(() => (this.task(this.deployTask!).progress?.bytesWritten ?? 0) > 0, 'the write under way', 30 * MIN, { intervalMs: 1000, diag: () => this.vm.serial().slice(-3000) });
    await this.rack.stopCentral();
    await this.rack.stopAgent(); // the runner's download breaks off here
    await this.rack.startAgent(); // offline: no central to link to
    await this.rack.waitForAgent((l) => l.msg === 'image deployed: netboot off, the machine boots its disk' && l.machine === this.id, 'netboot off at the agent, the central down', 30 * MIN, this.vm);
    // The installed OS boots from its disk and cloud-init runs from the agent, all with the central down.
    await this.vm.waitForSerial(/Linux version [\s\S]*Linux version [\s\S]*Cloud-init v\. \S+ finished/, 'the installed OS configured by cloud-init', 30 * MIN);
    await this.rack.startCentral();
    const w = await this.wait('deployed', '20m');
    expect(w.code, w.stderr).toBe(0);
    const t = this.task(this.deployTask);
    expect(t.state, t.output).toBe('succeeded');
    expect(t.output).toContain(`sha256 ${this.image.manifest.raw.sha256} verified`);
    expect(t.output).toMatch(/resumes=[1-9]/); // the download resumed from the restarted agent
    const m = this.machine();
    expect(m.state).toBe('deployed');
    expect(m.netboot).toBe(false);
    const events = (this.rack.cliJson(['machines', 'events', this.o.name]) as { items: Array<{ to: string }> }).items;
    expect(events.map((e) => e.to)).toEqual(expect.arrayContaining(['deploying', 'deployed']));
  }

  /** A run-script task runs in the installed OS: cloud-init applied the hostname, user, file; it finished cleanly. */
  async firstBoot(): Promise<void> {
    const script = join(this.rack.work, `${this.o.name}-probe.sh`);
    writeFileSync(script, 'hostname\nid ops\ncat /etc/underlay-test.txt\nstat -c %a /etc/underlay/runner.env\ncloud-init status --wait || true\necho "schema-warnings=$(grep -c "Invalid cloud-config" /var/log/cloud-init.log)"\n');
    const t = await this.taskDone(this.runTask('run-script', ['--script-file', script]), 'the run-script task in the installed OS', 10 * MIN);
    expect(t.state, t.output).toBe('succeeded');
    expect(t.output).toMatch(new RegExp(`^${this.o.name}$`, 'm'));
    expect(t.output).toMatch(/uid=\d+\(ops\)/);
    expect(t.output).toContain(FILE_BODY.trim());
    expect(t.output).toMatch(/^600$/m);
    expect(t.output).toMatch(/^status: done$/m); // cloud-init finished without errors ("status: error" otherwise)
    expect(t.output).toMatch(/^schema-warnings=0$/m); // the image's and our configs pass cloud-init's own schema
  }

  /** The playbook ran on every machine of the rendezvous through the agent; its changes are on this machine. */
  async ansible(): Promise<void> {
    const r = await this.o.ansible!.arrive();
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(new RegExp(`${this.o.name}\\s*:\\s*ok=\\d+\\s+changed=[1-9]\\d*\\s+unreachable=0\\s+failed=0`));
    const script = join(this.rack.work, `${this.o.name}-ansible-probe.sh`);
    writeFileSync(script, 'cat /etc/underlay-demo/copied.txt /etc/underlay-demo/demo.conf\ntest -s /etc/underlay-demo/handler-ran && echo handler-ran\nsystemctl is-enabled underlay-demo.service\ncat /var/lib/underlay-demo.ran\n');
    const t = await this.taskDone(this.runTask('run-script', ['--script-file', script]), 'the run-script after the playbook', 10 * MIN);
    expect(t.state, t.output).toBe('succeeded');
    expect(t.output).toContain(`copied to ${this.o.name}`);
    expect(t.output).toContain(`machine=${this.o.name}`);
    expect(t.output).toMatch(/^handler-ran$/m);
    expect(t.output).toMatch(/^enabled$/m);
    expect(t.output).toMatch(/^ran-by-systemd$/m);
  }

  /** A signed poweroff, then the disk itself: grown root, seed URL with the credential, runner config 0600, cloud-init's results. */
  async diskChecks(): Promise<void> {
    const t = await this.taskDone(this.runTask('poweroff', []), 'the poweroff task', 10 * MIN);
    expect(t.state, t.output).toBe('succeeded');
    await this.vm.waitForExit('the VM to power off', 5 * MIN);
    const table = execFileSync('sfdisk', ['-J', this.disk], { encoding: 'utf8' });
    const root = (JSON.parse(table) as { partitiontable: { partitions: { start: number; size: number }[] } }).partitiontable.partitions.at(-1)!;
    expect(root.start + root.size).toBeGreaterThan(3 * 2048 * 1024 - 4096); // grown to (nearly) the 3 GiB disk
    const off = root.start * 512;
    const blocks = Number(/Block count:\s+(\d+)/.exec(execFileSync('dumpe2fs', ['-h', `${this.disk}?offset=${off}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))![1]);
    expect(blocks * 4096).toBeGreaterThan(2.5 * 1024 ** 3);
    const read = (cmd: string) => debugfs(this.disk, off, cmd);
    expect(read('cat /etc/cloud/cloud.cfg.d/90-underlay.cfg')).toMatch(new RegExp(`seedfrom: http://${AGENT_ADDRESS.replace(/\./g, '\\.')}:8080/m/[A-Za-z0-9_-]{43}/`));
    expect(read('stat /etc/underlay/runner.env')).toMatch(/Mode:\s+0600/);
    expect(read('cat /etc/hostname').trim()).toBe(this.o.name);
    expect(read('cat /etc/underlay-test.txt')).toBe(FILE_BODY);
    expect(read('cat /home/ops/.ssh/authorized_keys')).toContain(KEY);
    // result.json and status.json are symlinks into /run (gone at poweroff); boot-finished is cloud-final's mark.
    expect(read('cat /var/lib/cloud/instance/boot-finished')).toMatch(/\d+\.\d+/);
    if (this.o.ansible) expect(read('cat /etc/underlay-demo/demo.conf')).toContain(`machine=${this.o.name}`); // what Ansible wrote, on the disk
  }

  /** Power on (netboot off: the disk boots), `machines release` → the runner wipes → netboot on → discovery → ready. */
  async release(): Promise<void> {
    this.boot();
    await this.vm.waitForSerial(/underlay: runner polling/, 'the installed runner after power-on', 20 * MIN);
    const waiting = this.wait('ready', '30m');
    const r = this.rack.cliJson(['machines', 'release', this.o.name, '--wipe', 'quick']) as { machine: MachineView; task: Task };
    expect(r.machine.state).toBe('releasing');
    const t = await this.taskDone(r.task.id, 'the release task', 15 * MIN);
    expect(t.state, t.output).toBe('succeeded');
    expect(t.output).toContain('/dev/vda: signatures wiped, first and last MiB zeroed');
    await this.rack.waitForAgent((l) => l.msg === 'machine released: netboot on, installed-OS credential revoked' && l.machine === this.id, 'netboot on at the agent', MIN, this.vm);
    const w = await waiting;
    expect(w.code, w.stderr).toBe(0);
    expect(this.vm.serial()).toMatch(/underlay: discovery image starting/);
    expect(this.machine().state).toBe('ready');
    expect(execFileSync('dd', [`if=${this.disk}`, 'bs=1M', 'count=1', 'status=none']).every((b) => b === 0)).toBe(true);
  }

  /** From ready (in discovery): deploy configured by the real Ignition (debian-ignition): user, file, unit. */
  async ignition(): Promise<void> {
    const params = [
      `ignition_users=${JSON.stringify([{ name: 'core', sshAuthorizedKeys: [KEY] }])}`,
      `ignition_files=${JSON.stringify([{ path: '/etc/underlay-ignition.txt', mode: 420, overwrite: true, contents: { source: `data:,${encodeURIComponent(IGNITION_BODY)}` } }])}`,
      `ignition_units=${JSON.stringify([{ name: 'underlay-hello.service', enabled: true, contents: '[Unit]\nDescription=written by Ignition\n[Service]\nType=oneshot\nExecStart=/bin/sh -c "echo ran > /run/underlay-hello"\n[Install]\nWantedBy=multi-user.target\n' }])}`,
    ];
    const id = await this.deployAction(['--image', GOOD_IMAGE, '--disk', '/dev/vda', '--config', 'ignition', '--bootenv', 'debian-ignition', ...params.flatMap((p) => ['--param', p])]);
    const waiting = this.wait('deployed', '60m');
    const t = await this.taskDone(id, 'the Ignition image-deploy task', 30 * MIN);
    expect(t.state, t.output).toBe('succeeded');
    const w = await waiting;
    expect(w.code, w.stderr).toBe(0);
    const script = join(this.rack.work, `${this.o.name}-ignition-probe.sh`);
    writeFileSync(script, 'hostname\nid core\ncat /home/core/.ssh/authorized_keys.d/ignition\ncat /etc/underlay-ignition.txt\nsystemctl is-enabled underlay-hello.service\ncat /run/underlay-hello\n');
    const probe = await this.taskDone(this.runTask('run-script', ['--script-file', script]), 'the run-script task after the Ignition deploy', 10 * MIN);
    expect(probe.state, probe.output).toBe('succeeded');
    expect(probe.output).toMatch(new RegExp(`^${this.o.name}$`, 'm'));
    expect(probe.output).toMatch(/uid=\d+\(core\)/);
    expect(probe.output).toContain(KEY);
    expect(probe.output).toContain(IGNITION_BODY.trim());
    expect(probe.output).toMatch(/^enabled$/m);
    expect(probe.output).toMatch(/^ran$/m);
    await this.vm.stop();
  }
}
