import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DISCOVERY_PATHS, ImagePushError, planPush } from './image-push.js';

const dir = mkdtempSync(join(tmpdir(), 'image-push-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const S1 = '1'.repeat(64);
const S2 = '2'.repeat(64);

function buildDir(name: string, manifest: unknown, files: Record<string, Buffer | string>) {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'manifest.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  for (const [f, b] of Object.entries(files)) writeFileSync(join(d, f), b);
  return d;
}

describe('planPush', () => {
  it('an image file needs a name; its format is detected later unless given', () => {
    const f = join(dir, 'disk.raw');
    writeFileSync(f, Buffer.alloc(4096));
    expect(() => planPush(f, {})).toThrow(/--name is required/);
    expect(planPush(f, { name: 'd12' })).toEqual([{ file: f, name: 'd12', replace: false, image: { format: 'auto' } }]);
    expect(planPush(f, { name: 'd12', format: 'xz', replace: true })).toEqual([{ file: f, name: 'd12', replace: true, image: { format: 'xz' } }]);
    expect(() => planPush(f, { name: 'd12', format: 'qcow2' })).toThrow(ImagePushError);
  });

  it('a name with a slash is a boot file standing for that boot-dir path (no image metadata)', () => {
    const f = join(dir, 'vmlinuz');
    writeFileSync(f, 'kernel');
    expect(planPush(f, { name: 'discovery/vmlinuz', replace: true })).toEqual([{ file: f, name: 'discovery/vmlinuz', replace: true }]);
    expect(() => planPush(f, { name: 'discovery/vmlinuz', format: 'raw' })).toThrow(/boot-dir path/);
  });

  it('an "images build debian" directory: the compressed artifact and the manifest\'s hashes, nothing recomputed', () => {
    const zst = Buffer.from('zstd bytes');
    const d = buildDir('debian', { name: 'debian-bookworm', raw: { file: 'disk.raw', size: 2147483648, sha256: S1 }, compressed: { file: 'disk.raw.zst', format: 'zstd', size: zst.length, sha256: S2 } }, { 'disk.raw.zst': zst });
    expect(planPush(d, {})).toEqual([
      { file: join(d, 'disk.raw.zst'), name: 'debian-bookworm', replace: false, image: { format: 'zstd', known: { sha256: S2, size: zst.length, rawSha256: S1, rawSize: 2147483648 } } },
    ]);
    expect(planPush(d, { name: 'debian-12' })[0]?.name).toBe('debian-12');
    expect(() => planPush(d, { format: 'xz' })).toThrow(/says disk.raw.zst is zstd/);
  });

  it('refuses a build directory whose file does not match its manifest, or an unknown or hostile manifest', () => {
    const d = buildDir('stale', { name: 'x', raw: { size: 4096, sha256: S1 }, compressed: { file: 'disk.raw.zst', format: 'zstd', size: 999, sha256: S2 } }, { 'disk.raw.zst': 'short' });
    expect(() => planPush(d, {})).toThrow(/manifest.json says 999/);
    expect(() => planPush(buildDir('junk', '{not json', {}), {})).toThrow(ImagePushError);
    expect(() => planPush(buildDir('other', { hello: 1 }, {}), {})).toThrow(/neither/);
    const escape = buildDir('escape', { name: 'x', raw: { size: 4096, sha256: S1 }, compressed: { file: '../../etc/passwd', format: 'zstd', size: 1, sha256: S2 } }, {});
    expect(() => planPush(escape, {})).toThrow(/file name in the build directory/);
    expect(() => planPush(join(dir, 'nope'), { name: 'x' })).toThrow(/does not exist/);
  });

  it('an "images build discovery" directory: kernel and initrd as the boot-dir paths the discovery bootenv names, replacing the previous build', () => {
    const d = buildDir('discovery', { name: 'discovery', hash: 'h', kernel: { file: 'vmlinuz', size: 6, sha256: S1 }, initrd: { file: 'initrd.img', size: 6, sha256: S2 } }, { vmlinuz: 'kernel', 'initrd.img': 'initrd' });
    expect(planPush(d, {})).toEqual([
      { file: join(d, 'vmlinuz'), name: DISCOVERY_PATHS.kernel, replace: true },
      { file: join(d, 'initrd.img'), name: DISCOVERY_PATHS.initrd, replace: true },
    ]);
    expect(() => planPush(d, { name: 'x' })).toThrow(/drop --name/);
  });
});
