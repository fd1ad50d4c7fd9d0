// The Debian disk image: build it once (cached in a fixed directory so later suites reuse it), check its
// manifest against the bytes, check that the same inputs give the same bytes (cache hit and a full forced
// rebuild). That the same image boots on SeaBIOS (syslinux) and OVMF (systemd-boot) and is configured by
// its cloud-init is proven where it matters, by the deploy: test/deploy/deploy.test.ts writes it to a BIOS
// and a UEFI machine's disk through the runner and boots both.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';
import {
  BUILD,
  buildImage,
  debugfs,
  debugfsExists,
  GPTMBR,
  IMAGE_CACHE,
  readHead,
  sha256File,
  sha256OfZstd,
  TEST_IMAGE_MIB,
  type Built,
} from './debian-image.test-support.js';

const ready = checkPrereqs('debian image', {
  root: true,
  commands: ['mmdebstrap', 'sfdisk', 'mkfs.ext4', 'debugfs', 'mkfs.vfat', 'mcopy', 'syslinux', 'zstd'],
  files: [GPTMBR],
});

describe.skipIf(!ready)('debian image: build, manifest, reproducible', () => {
  const work = mkdtempSync(join(tmpdir(), 'ul-debian-image-'));
  let built: Built;
  let rootOffset: number;

  beforeAll(() => {
    built = buildImage(['--out', IMAGE_CACHE]);
    const root = built.manifest.partitions.find((p) => p.name === 'root');
    if (!root) throw new Error('manifest has no root partition');
    rootOffset = root.startSector * 512;
  }, 45 * 60_000);

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('manifest.json tells the truth: hashes, sizes, layout, kernel, packages', async () => {
    const m = built.manifest;
    const raw = join(built.dir, m.raw.file);
    const zst = join(built.dir, m.compressed.file);
    expect(statSync(raw).size).toBe(m.raw.size);
    expect(m.raw.size).toBe(TEST_IMAGE_MIB * 1024 * 1024);
    expect(statSync(zst).size).toBe(m.compressed.size);
    expect(await sha256File(raw)).toBe(m.raw.sha256);
    expect(await sha256File(zst)).toBe(m.compressed.sha256);
    expect(await sha256OfZstd(zst)).toBe(m.raw.sha256); // the artifact decompresses to exactly the raw image

    // The partition table on disk is the one the manifest describes.
    const table = JSON.parse(execFileSync('sfdisk', ['-J', raw], { encoding: 'utf8' })) as {
      partitiontable: { label: string; id: string; partitions: { start: number; size: number; type: string; uuid: string; attrs?: string }[] };
    };
    expect(table.partitiontable.label).toBe('gpt');
    expect(table.partitiontable.id.toLowerCase()).toBe(m.diskGuid);
    expect(table.partitiontable.partitions.map((p) => [p.start, p.size, p.uuid.toLowerCase()])).toEqual(m.partitions.map((p) => [p.startSector, p.sectors, p.partUuid]));
    expect(table.partitiontable.partitions[0].type).toBe('C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
    expect(table.partitiontable.partitions[0].attrs).toContain('LegacyBIOSBootable');
    // gptmbr.bin is the MBR boot code (BIOS path).
    expect(readHead(raw, 440).equals(readFileSync(GPTMBR).subarray(0, 440))).toBe(true);
    // ESP: systemd-boot, syslinux, the kernel the manifest names.
    const esp = `${raw}@@${m.partitions[0].startSector * 512}`;
    const mdir = execFileSync('mdir', ['-a', '-b', '-/', '-i', esp, '::/'], { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    for (const f of ['::/EFI/BOOT/BOOTX64.EFI', '::/loader/entries/debian.conf', '::/syslinux/ldlinux.sys', '::/syslinux/ldlinux.c32', '::/syslinux/syslinux.cfg', '::/vmlinuz', '::/initrd.img']) {
      expect(mdir).toContain(f);
    }
    // Root filesystem: the UUID from the manifest, Debian's kernel, no SSH server, no host keys, empty machine-id.
    expect(execFileSync('dumpe2fs', ['-h', `${raw}?offset=${rootOffset}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })).toContain(`Filesystem UUID:          ${m.partitions[1].fsUuid}`);
    expect(debugfs(raw, rootOffset, 'ls -l /boot')).toContain(`vmlinuz-${m.kernelRelease}`);
    for (const p of ['systemd', 'systemd-sysv', 'cloud-init', 'python3', `linux-image-${m.kernelRelease}`, 'systemd-boot-efi']) expect(m.packages[p], p).toMatch(/\S/);
    expect(m.packages['openssh-server']).toBeUndefined();
    expect(m.ssh).toBe(false);
    expect(debugfsExists(raw, rootOffset, '/etc/cloud/cloud.cfg.d/10-underlay.cfg')).toBe(true);
    expect(debugfsExists(raw, rootOffset, '/usr/sbin/sshd')).toBe(false);
    expect(debugfsExists(raw, rootOffset, '/etc/ssh/ssh_host_ed25519_key')).toBe(false);
    expect(debugfs(raw, rootOffset, 'stat /etc/machine-id')).toMatch(/Size: 0\b/);
    // No account can log in with a password: every shadow entry is locked (* or !).
    const shadow = debugfs(raw, rootOffset, 'cat /etc/shadow').trim().split('\n');
    expect(shadow.map((l) => l.split(':')[0])).toContain('root');
    expect(shadow.filter((l) => !/^[^:]+:[*!]/.test(l))).toEqual([]);
    // cloud-init is set up for our deploy path.
    const cfg = debugfs(raw, rootOffset, 'cat /etc/cloud/cloud.cfg.d/10-underlay.cfg');
    expect(cfg).toMatch(/^datasource_list: \[ NoCloud, None \]$/m);
    expect(cfg).not.toMatch(/^(locale|ssh_genkeytypes):/m); // values cloud-init's schema rejects
    // No locale module (no locales package) and, without --ssh, no ssh module: taken out of the lists.
    const modules = debugfs(raw, rootOffset, 'cat /etc/cloud/cloud.cfg');
    expect(modules).toMatch(/^cloud_config_modules:$/m);
    expect(modules).toMatch(/^ - users-groups$/m);
    expect(modules).not.toMatch(/^ - (locale|ssh)$/m);
  });

  it('a second build with the same inputs is a cache hit: returns at once, same directory, same bytes', async () => {
    const again = buildImage(['--out', IMAGE_CACHE]);
    expect(again.dir).toBe(built.dir);
    expect(again.stderr).toMatch(/up to date/);
    expect(again.manifest.raw.sha256).toBe(built.manifest.raw.sha256);
    // The cache key covers the inputs: each option changes it, the output directory does not.
    const key = (...a: string[]) => execFileSync('bash', [BUILD, '--print-key', '--size', `${TEST_IMAGE_MIB}M`, ...a], { encoding: 'utf8' }).trim();
    expect(key()).toBe(built.manifest.hash);
    expect(key('--out', join(work, 'elsewhere'))).toBe(built.manifest.hash);
    const others = [key('--packages', 'jq'), key('--size', '3G'), key('--ssh'), key('--release', 'trixie')];
    expect(new Set([built.manifest.hash, ...others]).size).toBe(5);
  });

  it('a full forced rebuild of the same inputs gives byte-identical images (raw and zstd)', () => {
    const out = join(work, 'rebuild');
    const again = buildImage(['--force', '--out', out]);
    expect(again.manifest.hash).toBe(built.manifest.hash);
    expect(again.manifest.raw.sha256).toBe(built.manifest.raw.sha256);
    expect(again.manifest.compressed.sha256).toBe(built.manifest.compressed.sha256);
    expect(again.manifest.packages).toEqual(built.manifest.packages);
    rmSync(out, { recursive: true, force: true });
  }, 45 * 60_000);
});
