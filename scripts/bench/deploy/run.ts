/**
 * Deploy benchmark (issue 12), in a lab (`underlay lab`: a namespace, a central, an agent, QEMU TCG
 * machines), one firmware at a time so the two do not share the CPU:
 *
 *   node dist/scripts/bench/deploy/run.js [--firmware bios,uefi] [--image-dir DIR] [--keep]
 *
 * 1. Write throughput, same VM (the first firmware only), same agent, same disk, same uncompressed image:
 *    `curl /files/sha256/<raw> | dd bs=4M iflag=fullblock oflag=direct` run as a signed run-script in the
 *    discovery environment, then the image-deploy task of the same raw image (its write phase, reported
 *    by deploy.sh as write_ms). Ratio = dd time / deploy write time (target ≥ 0.9).
 * 2. Bare → deployed for each firmware, split: PXE (power-on → the discovery kernel runs), discovery
 *    (→ ready at the central), write (deploy issued → image-deploy task succeeded: write, verify, grow,
 *    seed), reboot (→ the installed kernel starts), first boot (→ deployed: cloud-init and the runner's
 *    report). The deploy is the zstd image the build makes (the realistic path).
 * Prints the load average next to each figure. Run it on a quiet machine (nothing else running).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEnv, labDown, labUp, packageRoot, type LabMachine, type LabState } from '../../lab/lab.js';

const ROOT = packageRoot();
const CLI = join(ROOT, 'dist/shared/cli/underlay.js');
const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const firmwares = opt('firmware', 'bios,uefi').split(',') as Array<'bios' | 'uefi'>;
const keep = args.includes('--keep');
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function imageDir(): string {
  const given = opt('image-dir', '');
  if (given) return given;
  const r = spawnSync('bash', [join(ROOT, 'scripts/images/build-debian.sh')], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error('build-debian.sh failed');
  return r.stdout.trim().split('\n').pop()!;
}

class Lab {
  private constructor(
    readonly s: LabState,
    readonly env: Record<string, string>,
  ) {}

  static async up(firmware: 'bios' | 'uefi', dir: string): Promise<Lab> {
    const s = await labUp({ dir, machines: 1, firmware, memoryMb: 1024, cpus: 1, diskGb: 4, site: 'bench', ownCentral: true, client: {}, log: () => undefined });
    return new Lab(s, cliEnv(s));
  }

  cli(a: string[]): string {
    return execFileSync(process.execPath, [CLI, ...a], { encoding: 'utf8', env: { ...process.env, ...this.env }, maxBuffer: 64 << 20 });
  }
  json<T>(a: string[]): T {
    return JSON.parse(this.cli([...a, '-o', 'json'])) as T;
  }
  get machine(): LabMachine {
    return this.s.machines[0]!;
  }
  serial(): string {
    return existsSync(this.machine.serialLog) ? readFileSync(this.machine.serialLog, 'latin1') : '';
  }
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 60 * 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await sleep(1000);
  }
}

interface Task {
  id: string;
  state: string;
  output?: string;
}

async function taskDone(lab: Lab, id: string): Promise<Task> {
  const t = await until(`task ${id}`, () => {
    const x = lab.json<Task>(['tasks', 'show', id]);
    return ['succeeded', 'failed', 'rejected', 'expired', 'cancelled'].includes(x.state) ? x : undefined;
  });
  if (t.state !== 'succeeded') throw new Error(`task ${id} ${t.state}: ${t.output}`);
  return t;
}

const machineState = (lab: Lab, name: string) => lab.json<{ state: string }>(['machines', 'show', name]).state;

async function bareToDeployed(lab: Lab, t0: number, image: string, imageSha: string, name: string): Promise<Record<string, number>> {
  const at: Record<string, number> = {};
  await until('the discovery kernel', () => /underlay: discovery image starting/.test(lab.serial()));
  at.pxe = Date.now();
  const m = await until('the machine at the central', () => lab.json<{ items: Array<{ id: string; macs: string[] }> }>(['machines', 'list']).items.find((x) => x.macs.includes(lab.machine.mac)));
  await until('ready', () => lab.json<{ state: string }>(['machines', 'show', m.id]).state === 'ready');
  at.discovery = Date.now();
  lab.cli(['machines', 'update', m.id, '--name', name]);
  await until('the agent to hold the image', () => existsSync(join(lab.s.bootDir, 'sha256', imageSha)));
  const r = lab.json<{ task: Task }>(['machines', 'deploy', name, '--image', image]);
  await taskDone(lab, r.task.id);
  at.write = Date.now();
  const kernels = () => (lab.serial().match(/Linux version/g) ?? []).length;
  const before = kernels();
  await until('the installed kernel', () => kernels() > before);
  at.reboot = Date.now();
  await until('deployed', () => machineState(lab, name) === 'deployed');
  at.firstBoot = Date.now();
  const split: Record<string, number> = {};
  let prev = t0;
  for (const k of ['pxe', 'discovery', 'write', 'reboot', 'firstBoot']) {
    split[k] = (at[k]! - prev) / 1000;
    prev = at[k]!;
  }
  split.total = (at.firstBoot! - t0) / 1000;
  return split;
}

async function throughput(lab: Lab, rawSha: string, rawImage: string, name: string): Promise<void> {
  // The machine is ready (discovery environment): curl | dd the raw image onto its disk, timed inside the VM.
  const script = join(lab.s.dir, 'dd.sh');
  writeFileSync(
    script,
    `ms() { read -r u _ </proc/uptime; echo $((\${u%.*} * 1000 + 10 * 1\${u#*.} - 1000)); }\n` +
      `t0=$(ms)\ncurl -sS -f -H @/run/underlay/auth.header "$UNDERLAY_URL/files/sha256/${rawSha}" | dd of=/dev/vda bs=4M iflag=fullblock oflag=direct 2>/dev/null\n` +
      `rc=$?\nt1=$(ms)\necho "dd_ms=$((t1 - t0)) rc=$rc"\n`,
  );
  const m = lab.json<{ id: string }>(['machines', 'show', name]);
  const dd = await taskDone(lab, lab.json<Task>(['tasks', 'create', '--site', 'bench', '--machine', m.id, '--kind', 'run-script', '--script-file', script]).id);
  const ddMs = Number(/dd_ms=(\d+) rc=0/.exec(dd.output ?? '')?.[1]);
  if (!ddMs) throw new Error(`curl | dd failed: ${dd.output}`);
  const r = lab.json<{ task: Task }>(['machines', 'deploy', name, '--image', rawImage]);
  const t = await taskDone(lab, r.task.id);
  const w = /write_ms=(\d+) verify_ms=(\d+)/.exec(t.output ?? '');
  if (!w) throw new Error(`no write timing in the deploy output: ${t.output}`);
  const writeMs = Number(w[1]);
  console.log(`write, same VM/agent/disk/raw image: curl|dd ${(ddMs / 1000).toFixed(1)} s, image-deploy write ${(writeMs / 1000).toFixed(1)} s (+ verify ${(Number(w[2]) / 1000).toFixed(1)} s) → ratio ${(ddMs / writeMs).toFixed(2)}× (target ≥ 0.9) [load ${load()}]`);
  await until('deployed', () => machineState(lab, name) === 'deployed');
}

async function main(): Promise<void> {
  const dir = imageDir();
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { raw: { sha256: string; size: number }; compressed: { sha256: string; size: number } };
  console.log(`image ${dir}: raw ${(manifest.raw.size / 2 ** 20).toFixed(0)} MiB, zstd ${(manifest.compressed.size / 2 ** 20).toFixed(0)} MiB`);
  for (const [i, fw] of firmwares.entries()) {
    const labDir = mkdtempSync(join(tmpdir(), `ul-bench-deploy-${fw}-`));
    console.log(`${fw}: lab up [load ${load()}]`);
    const lab = await Lab.up(fw, labDir);
    const t0 = Date.now() - 1000; // labUp powers the machine on about a second before it returns
    try {
      lab.cli(['images', 'push', join(dir, 'disk.raw.zst'), '--name', 'bench-zst']);
      const name = `bench-${fw}`;
      const split = await bareToDeployed(lab, t0, 'bench-zst', manifest.compressed.sha256, name);
      console.log(`${fw}: bare → deployed ${split.total!.toFixed(0)} s = ${['pxe', 'discovery', 'write', 'reboot', 'firstBoot'].map((k) => `${k} ${split[k]!.toFixed(0)} s`).join(', ')} [load ${load()}]`);
      if (i === 0) {
        lab.cli(['images', 'push', join(dir, 'disk.raw'), '--name', 'bench-raw']);
        const w = lab.json<{ task: Task }>(['machines', 'release', name]);
        await taskDone(lab, w.task.id);
        await until('ready again', () => machineState(lab, name) === 'ready');
        await until('the agent to hold the raw image', () => existsSync(join(lab.s.bootDir, 'sha256', manifest.raw.sha256)));
        await throughput(lab, manifest.raw.sha256, 'bench-raw', name);
      }
    } finally {
      await labDown(labDir, { log: () => undefined, keepDir: keep });
      if (!keep) rmSync(labDir, { recursive: true, force: true });
    }
  }
}

main().catch((e: Error) => {
  console.error(`bench failed: ${e.message}`);
  process.exitCode = 1;
});
