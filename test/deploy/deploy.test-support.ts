/**
 * The deploy on real firmware (QEMU TCG), through a real central and site agent, for one firmware:
 * an unknown VM with an empty 3 GiB virtio disk PXE boots into discovery; the built Debian image (zstd) and a
 * copy with one flipped byte are pushed to the central as artifacts (the agent syncs them); image-deploy
 * tasks are created with POST /api/v1/tasks (`underlay tasks create`). The flipped image is refused
 * (hash-mismatch, the machine stays in discovery, netboot stays on); the good one is written and verified,
 * netboot goes off, the VM reboots from its disk, cloud-init applies a hostname, a user with an SSH key and
 * a file from params (NoCloud from the agent with the per-deploy credential), the installed runner reports
 * its OS (a machine-os event in the central's store), a run-script task runs in the installed OS, and a
 * release wipes the disk and brings the machine back to discovery. Asserted from the serial log, the
 * central and the disk image itself (debugfs, no mount).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';
import { AGENT_ADDRESS, RACK_PREREQS, Rack, SITE, until, type Vm } from '../e2e/rack.js';
import { buildImage, debugfs, IMAGE_CACHE, OVMF_CODE, type Built } from '../images/debian-image.test-support.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8xO2vU0hQ0v6N7kKX0r4cQ9x1Yb2m3n4o5p6q7r8s ops@underlay-test';
const FILE_BODY = 'written by cloud-init from an Underlay param\n';

interface Task {
  id: string;
  state: string;
  reason?: string;
  output?: string;
  exitCode?: number;
  progress?: { phase: string; bytesWritten?: number; rawSize?: number; rateBytesPerSec?: number };
}

/** Registers the deploy suite for one firmware (one VM at a time: run the files one after the other). */
export function deploySuite(o: { firmware: 'bios' | 'uefi'; prefix: string; mac: string }): void {
  const MAC = o.mac;
  const ready = checkPrereqs(`deploy (${o.firmware})`, {
    ...RACK_PREREQS,
    commands: [...RACK_PREREQS.commands, 'mmdebstrap', 'zstd', 'debugfs', 'sfdisk', 'curl'],
    ...(o.firmware === 'uefi' ? { files: [...RACK_PREREQS.files, OVMF_CODE] } : {}),
  });
describe.skipIf(!ready)(`deploy: ${o.firmware} machine, Debian image, cloud-init first boot`, () => {
  let rack: Rack;
  let vm: Vm;
  let image: Built;
  let disk: string;
  let machineId: string;
  let good: { sha256: string; size: number };
  let flipped: { sha256: string; size: number };

  const sha256Of = (f: string) => execFileSync('sha256sum', [f], { encoding: 'utf8' }).split(' ')[0]!;
  /** Uploads a file to the central's artifact store (PUT /api/v1/artifacts/<sha256>) from inside the rack. */
  const push = (file: string, name: string) => {
    const sha256 = sha256Of(file);
    execFileSync('ip', ['netns', 'exec', rack.ns.name, 'curl', '-sS', '-f', '--cacert', join(rack.work, 'central', 'ca.pem'), '-H', `@${join(rack.work, 'auth.header')}`, '-T', file, `https://127.0.0.1:8443/api/v1/artifacts/${sha256}?name=${name}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { sha256, size: statSync(file).size };
  };
  const task = (id: string) => rack.cliJson(['tasks', 'show', id]) as Task;
  const createTask = (kind: string, extra: string[]) => (rack.cliJson(['tasks', 'create', '--site', SITE, '--machine', machineId, '--kind', kind, ...extra]) as Task).id;
  const deployPayload = (artifact: { sha256: string; size: number }) =>
    JSON.stringify({ image: { name: 'debian-12-test', sha256: artifact.sha256, size: artifact.size, format: 'zstd', rawSha256: image.manifest.raw.sha256, rawSize: image.manifest.raw.size }, config: 'cloud-init' });

  beforeAll(async () => {
    image = buildImage(['--out', IMAGE_CACHE]);
    rack = await Rack.start({ prefix: o.prefix, dhcp: 'full' });
    writeFileSync(join(rack.work, 'auth.header'), `Authorization: Bearer ${readFileSync(join(rack.work, 'central', 'admin.token'), 'utf8').trim()}\n`, { mode: 0o600 });
    // The good image and the same disk with one flipped byte inside the root filesystem, recompressed.
    good = push(join(image.dir, 'disk.raw.zst'), 'debian-12-test');
    const bad = join(rack.work, 'flipped.raw');
    execFileSync('cp', ['--sparse=always', join(image.dir, 'disk.raw'), bad]);
    const at = image.manifest.partitions[1]!.startSector * 512 + 64 * 1024 * 1024;
    const byte = execFileSync('dd', [`if=${bad}`, 'bs=1', `skip=${at}`, 'count=1', 'status=none'])[0]!;
    execFileSync('dd', [`of=${bad}`, 'bs=1', `seek=${at}`, 'count=1', 'conv=notrunc', 'status=none'], { input: Buffer.from([byte ^ 0x01]) });
    execFileSync('zstd', ['-q', '-T0', '-3', '-f', bad, '-o', `${bad}.zst`]);
    flipped = push(`${bad}.zst`, 'debian-12-flipped');
    disk = join(rack.work, 'vm-disk.raw');
    execFileSync('truncate', ['-s', '3G', disk]);
    vm = rack.bootVm({ name: 'deploy', firmware: o.firmware, mac: MAC, memMiB: 1024, disk, allowReboot: true });
  }, 3_600_000);

  afterAll(() => {
    rack?.destroy();
  });

  it('discovers the machine; the agent has both images', async () => {
    await vm.waitForSerial(/underlay: discovered /, 'discovery', 900_000);
    const m = (await until(() => rack.machines(MAC)[0], 'the machine at the central', 120_000)) as { id: string };
    machineId = m.id;
    const params = [
      `users=${JSON.stringify([{ name: 'ops', shell: '/bin/bash', lock_passwd: true, ssh_authorized_keys: [KEY] }])}`,
      `write_files=${JSON.stringify([{ path: '/etc/underlay-test.txt', content: FILE_BODY, permissions: '0640' }])}`,
    ];
    rack.cli(['machines', 'update', machineId, '--name', 'deployed-01', '--bootenv', 'debian-cloud', ...params.flatMap((p) => ['--param', p])]);
    const files = join(rack.work, 'boot', 'sha256');
    await until(() => existsSync(join(files, good.sha256)) && existsSync(join(files, flipped.sha256)), 'the agent to sync both images', 600_000, { intervalMs: 2000 });
  }, 1_200_000);

  it('refuses the image with one flipped byte: hash-mismatch, netboot stays on, the machine stays in discovery', async () => {
    const id = createTask('image-deploy', ['--payload', deployPayload(flipped)]);
    const t = await until(() => {
      const x = task(id);
      return x.state === 'failed' || x.state === 'succeeded' ? x : undefined;
    }, 'the flipped deploy to finish', 900_000, { intervalMs: 3000, diag: () => vm.serial().slice(-3000) });
    expect(t.state).toBe('failed');
    expect(t.reason).toBe('hash-mismatch');
    expect(t.output).toContain(`expected ${image.manifest.raw.sha256}`);
    expect(vm.serial()).toMatch(/task \S+ \(image-deploy\) failed: hash-mismatch/);
    expect(rack.agentLines().some((l) => l.msg?.startsWith('image deployed'))).toBe(false);
  }, 1_000_000);

  let deployId: string;
  it('writes and verifies the good image with progress, turns netboot off, reboots from the disk', async () => {
    deployId = createTask('image-deploy', ['--payload', deployPayload(good)]);
    const seen: Task['progress'][] = [];
    const t = await until(() => {
      const x = task(deployId);
      if (x.progress) seen.push(x.progress);
      return x.state === 'failed' || x.state === 'succeeded' ? x : undefined;
    }, 'the deploy to finish', 1_200_000, { intervalMs: 3000, diag: () => vm.serial().slice(-3000) });
    expect(t.state, t.output).toBe('succeeded');
    expect(t.output).toContain(`sha256 ${image.manifest.raw.sha256} verified`);
    expect(seen.some((p) => p!.phase === 'write' && (p!.bytesWritten ?? 0) > 0 && (p!.rateBytesPerSec ?? 0) > 0)).toBe(true);
    await rack.waitForAgent((l) => l.msg === 'image deployed: netboot off, the machine boots its disk' && l.machine === machineId, 'netboot off at the agent', 60_000, vm);
    // The VM reboots and PXE boots again (network first): the agent's DHCP now gives it no boot file (or its
    // script a local boot), so the firmware goes on to its disk.
    const off = rack.agentLines().findIndex((l) => l.msg === 'image deployed: netboot off, the machine boots its disk');
    await until(
      () => rack.agentLines().slice(off).some((l) => l.mac === MAC && ((l.msg === 'dhcp: no boot file' && l.reason === 'netboot-disallowed') || l.msg === 'served iPXE script')),
      'the agent to send the rebooted machine to its disk',
      600_000,
      { intervalMs: 2000 },
    );
    await vm.waitForSerial(/Linux version [\s\S]*Linux version /, 'the installed kernel to start', 600_000);
  }, 1_500_000);

  it('first boot: cloud-init from the agent, the installed runner reports its OS to the central', async () => {
    await vm.waitForSerial(/deployed-01 login:|underlay: reported this OS to the agent/, 'the installed OS to come up', 900_000);
    await vm.waitForSerial(/underlay: reported this OS to the agent/, 'the installed runner', 600_000);
    const central = join(rack.work, 'central');
    const stored = await until(() => {
      for (const f of readdirSync(central)) {
        const p = join(central, f);
        if (!statSync(p).isFile()) continue;
        const text = readFileSync(p, 'utf8');
        const i = text.indexOf('"kind":"machine-os"');
        if (i >= 0) return text;
      }
      return undefined;
    }, 'the machine-os event in the central store', 300_000, { intervalMs: 2000 });
    expect(stored).toContain(`"machineId":"${machineId}"`);
    expect(stored).toContain(`"deployTaskId":"${deployId}"`);
    expect(stored).toMatch(/"os":\{"id":"debian","versionId":"12"/);
  }, 1_500_000);

  it('a run-script task runs in the installed OS and its output comes back', async () => {
    const script = join(rack.work, 'probe.sh');
    writeFileSync(script, 'hostname\nid ops\ncat /etc/underlay-test.txt\nstat -c %a /etc/underlay/runner.env\ncloud-init status --wait || true\n');
    const id = createTask('run-script', ['--script-file', script]);
    const t = await until(() => {
      const x = task(id);
      return x.state === 'failed' || x.state === 'succeeded' ? x : undefined;
    }, 'the run-script task in the installed OS', 600_000, { intervalMs: 3000, diag: () => vm.serial().slice(-3000) });
    expect(t.state, t.output).toBe('succeeded');
    expect(t.output).toContain('deployed-01');
    expect(t.output).toMatch(/uid=\d+\(ops\)/);
    expect(t.output).toContain(FILE_BODY.trim());
    expect(t.output).toMatch(/^600$/m);
    expect(t.output).toMatch(/^status: done$/m); // cloud-init finished without errors (an error is "status: error")
  }, 700_000);

  it('the disk itself: grown root, seed URL with the credential, runner config 0600, cloud-init results', async () => {
    await vm.stop();
    const table = execFileSync('sfdisk', ['-J', disk], { encoding: 'utf8' });
    const parts = (JSON.parse(table) as { partitiontable: { partitions: { start: number; size: number }[] } }).partitiontable.partitions;
    const root = parts.at(-1)!;
    expect(root.start + root.size).toBeGreaterThan(3 * 2048 * 1024 - 4096); // grown to (nearly) the 3 GiB disk
    // The VM was stopped hard: the root's latest changes may sit in its ext4 journal, which debugfs does not
    // replay. Take the partition out and let e2fsck replay the journal first (0 clean, 1 fixed).
    const copy = join(rack.work, 'root-after.img');
    execFileSync('dd', [`if=${disk}`, `of=${copy}`, 'bs=4M', 'iflag=skip_bytes,count_bytes', `skip=${root.start * 512}`, `count=${root.size * 512}`, 'conv=sparse', 'status=none']);
    const fsck = spawnSync('e2fsck', ['-fy', copy], { encoding: 'utf8' });
    expect([0, 1], fsck.stdout + fsck.stderr).toContain(fsck.status);
    const off = 0;
    const blocks = Number(/Block count:\s+(\d+)/.exec(execFileSync('dumpe2fs', ['-h', copy], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))![1]);
    expect(blocks * 4096).toBeGreaterThan(2.5 * 1024 ** 3);
    const seed = debugfs(copy, off, 'cat /etc/cloud/cloud.cfg.d/90-underlay.cfg');
    expect(seed).toMatch(new RegExp(`seedfrom: http://${AGENT_ADDRESS.replace(/\./g, '\\.')}:8080/m/[A-Za-z0-9_-]{43}/`));
    expect(debugfs(copy, off, 'stat /etc/underlay/runner.env')).toMatch(/Mode:\s+0600/);
    expect(debugfs(copy, off, 'cat /etc/hostname').trim()).toBe('deployed-01');
    expect(debugfs(copy, off, 'cat /etc/underlay-test.txt')).toBe(FILE_BODY);
    expect(debugfs(copy, off, 'cat /home/ops/.ssh/authorized_keys')).toContain(KEY);
    // result.json and status.json are symlinks into /run (gone with the VM); boot-finished is cloud-final's mark.
    expect(debugfs(copy, off, 'cat /var/lib/cloud/instance/boot-finished')).toMatch(/\d+\.\d+/);
  }, 300_000);

  it('release: the installed runner wipes the disk, netboot goes back on, the machine boots discovery again', async () => {
    // Power the machine on again: it boots its disk (netboot is still off) and the runner comes back.
    const again = rack.bootVm({ name: 'deploy2', firmware: o.firmware, mac: MAC, memMiB: 1024, disk, allowReboot: true });
    await again.waitForSerial(/underlay: runner polling/, 'the installed runner after a power cycle', 900_000);
    const id = createTask('release', ['--payload', JSON.stringify({ wipe: 'quick' })]);
    const t = await until(() => {
      const x = task(id);
      return x.state === 'failed' || x.state === 'succeeded' ? x : undefined;
    }, 'the release', 600_000, { intervalMs: 3000, diag: () => again.serial().slice(-3000) });
    expect(t.state, t.output).toBe('succeeded');
    expect(t.output).toContain('/dev/vda: signatures wiped, first and last MiB zeroed');
    await rack.waitForAgent((l) => l.msg === 'machine released: netboot on, installed-OS credential revoked' && l.machine === machineId, 'netboot on at the agent', 60_000, again);
    await again.waitForSerial(/underlay: discovery image starting/, 'discovery after the release', 900_000);
    await again.stop();
    expect(execFileSync('dd', [`if=${disk}`, 'bs=1M', 'count=1', 'status=none']).every((b) => b === 0)).toBe(true);
  }, 1_500_000);
});
}
