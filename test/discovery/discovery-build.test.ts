// The discovery image's build, without booting it: outside the repository, cached and reused, and
// reproducible (a forced rebuild in another cache gives the same bytes). Booting it is
// discovery.test.ts, in the QEMU lane; these checks run beside it (test/support/lanes.ts), so the
// forced rebuild (xz -9 of the initrd) is not on the QEMU lane's clock.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';
import { buildDiscovery as build, REPO, type Built } from './discovery-image.js';

const ready = checkPrereqs('discovery image build', {
  root: true,
  commands: ['busybox', 'openssl', 'apt-get', 'dpkg-deb', 'perl', 'xz'],
  files: ['/bin/busybox'],
});

const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

describe.skipIf(!ready)('discovery image', () => {
  const work = mkdtempSync(join(tmpdir(), 'ul-discovery-build-'));
  let image: Built;

  beforeAll(() => {
    image = build();
  }, 1_200_000);

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('builds vmlinuz + initrd.img outside the repository and reuses the cached build', () => {
    expect(image.dir.startsWith(REPO)).toBe(false);
    for (const f of ['vmlinuz', 'initrd.img', 'manifest.json']) expect(statSync(join(image.dir, f)).size).toBeGreaterThan(0);
    const manifest = JSON.parse(readFileSync(join(image.dir, 'manifest.json'), 'utf8'));
    expect(manifest.initrd.sha256).toBe(sha256(join(image.dir, 'initrd.img')));
    const again = build();
    expect(again.dir).toBe(image.dir);
    expect(again.stderr).toMatch(/up to date/);
  });

  it('is reproducible: a forced rebuild in another cache gives the same bytes', () => {
    const cache = join(work, 'cache2');
    const base = join(resolve(image.dir, '../../..'));
    mkdirSync(cache, { recursive: true });
    if (existsSync(join(base, 'downloads'))) symlinkSync(join(base, 'downloads'), join(cache, 'downloads'));
    const second = build(['--cache', cache, '--force']);
    expect(second.dir).not.toBe(image.dir);
    expect(second.dir.split('/').pop()).toBe(image.dir.split('/').pop());
    expect(sha256(join(second.dir, 'initrd.img'))).toBe(sha256(join(image.dir, 'initrd.img')));
    expect(sha256(join(second.dir, 'vmlinuz'))).toBe(sha256(join(image.dir, 'vmlinuz')));
  });
});
