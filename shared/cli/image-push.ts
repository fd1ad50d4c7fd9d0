import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { ImageFormat } from '../api/images.js';
import { BUILTIN_DISCOVERY } from '../bootenv/builtin.js';
import type { ClientConfig } from '../client/api-client.js';
import { progress, uploadArtifact } from '../client/transfer.js';
import { detectFormat, digestImage, type ImageDigest } from './image-digest.js';

/** One file to upload: a disk image (with raw metadata) or a boot file standing for a boot-dir path. */
export interface PushItem {
  file: string;
  name: string;
  replace: boolean;
  /** A disk image. `known`: a build manifest already gives every hash (nothing recomputed). */
  image?: { format: ImageFormat | 'auto'; known?: ImageDigest };
}

/** A push the CLI refuses before touching the central (bad manifest, contradictory format, …). */
export class ImagePushError extends Error {
  override readonly name = 'ImagePushError';
}

const Sha = z.string().regex(/^[0-9a-f]{64}$/);
const FileName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a file name in the build directory');
/** `images build debian`'s manifest.json (only what a push needs). */
const DiskManifest = z.object({
  name: z.string(),
  raw: z.object({ size: z.number().int().min(512), sha256: Sha }),
  compressed: z.object({ file: FileName, format: ImageFormat, size: z.number().int().min(1), sha256: Sha }),
});
/** `images build discovery`'s manifest.json. */
const DiscoveryManifest = z.object({
  name: z.literal('discovery'),
  kernel: z.object({ file: FileName, sha256: Sha }),
  initrd: z.object({ file: FileName, sha256: Sha }),
});

/** The boot-dir paths the `discovery` boot environment names; a pushed discovery image stands in for them. */
export const DISCOVERY_PATHS = { kernel: BUILTIN_DISCOVERY.kernel!.url, initrd: BUILTIN_DISCOVERY.initrds[0]!.url };

function sizeMatches(file: string, size: number | undefined) {
  if (!existsSync(file)) throw new ImagePushError(`${file} (named in manifest.json) does not exist`);
  if (size !== undefined && statSync(file).size !== size) throw new ImagePushError(`${file} is ${statSync(file).size} bytes, but manifest.json says ${size}: rebuild it`);
}

/**
 * What `underlay images push PATH` uploads. PATH is an image file (raw, qcow2, zstd, xz, gzip), a boot
 * file pushed under a boot-dir path (`--name discovery/vmlinuz`), or the output directory of
 * `images build debian|discovery` (its manifest.json names the files and their hashes).
 */
export function planPush(path: string, o: { name?: string; format?: string; replace?: boolean }): PushItem[] {
  const format = o.format ?? 'auto';
  if (!['auto', ...ImageFormat.options].includes(format)) throw new ImagePushError(`--format must be raw, zstd, xz, gzip or auto (not "${format}")`);
  if (!existsSync(path)) throw new ImagePushError(`${path} does not exist`);
  if (!statSync(path).isDirectory()) {
    if (!o.name) throw new ImagePushError('--name is required when pushing a file (e.g. --name debian-12)');
    if (o.name.includes('/')) {
      if (o.format !== undefined) throw new ImagePushError(`${o.name} is a boot-dir path (a boot file, not a disk image): --format does not apply`);
      return [{ file: path, name: o.name, replace: !!o.replace }];
    }
    return [{ file: path, name: o.name, replace: !!o.replace, image: { format: format as ImageFormat | 'auto' } }];
  }
  const mf = join(path, 'manifest.json');
  if (!existsSync(mf)) throw new ImagePushError(`${path} is a directory without manifest.json: push an image file, or the output directory of "underlay images build"`);
  if (statSync(mf).size > 4 * 1024 * 1024) throw new ImagePushError(`${mf} is too large to be a build manifest`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(mf, 'utf8'));
  } catch (e) {
    throw new ImagePushError(`${mf}: ${(e as Error).message}`);
  }
  const disc = DiscoveryManifest.safeParse(json);
  if (disc.success) {
    if (o.name !== undefined) throw new ImagePushError(`${path} is a discovery image: it is always pushed as ${DISCOVERY_PATHS.kernel} and ${DISCOVERY_PATHS.initrd} (drop --name)`);
    const k = join(path, disc.data.kernel.file);
    const i = join(path, disc.data.initrd.file);
    sizeMatches(k, undefined);
    sizeMatches(i, undefined);
    // A new discovery build replaces the one the agents serve.
    return [
      { file: k, name: DISCOVERY_PATHS.kernel, replace: true },
      { file: i, name: DISCOVERY_PATHS.initrd, replace: true },
    ];
  }
  const disk = DiskManifest.safeParse(json);
  if (!disk.success) throw new ImagePushError(`${mf} is neither an "images build debian" nor an "images build discovery" manifest: ${disk.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const m = disk.data;
  const file = join(path, m.compressed.file);
  sizeMatches(file, m.compressed.size);
  if (o.format !== undefined && o.format !== 'auto' && o.format !== m.compressed.format) throw new ImagePushError(`manifest.json says ${m.compressed.file} is ${m.compressed.format}, not ${o.format}`);
  return [
    {
      file,
      name: o.name ?? m.name,
      replace: !!o.replace,
      image: { format: m.compressed.format, known: { sha256: m.compressed.sha256, size: m.compressed.size, rawSha256: m.raw.sha256, rawSize: m.raw.size } },
    },
  ];
}

function run(cmd: string, args: string[], hint: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    p.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new ImagePushError(`${cmd} not found: ${hint}`) : e));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new ImagePushError(`${cmd} ${args.join(' ')} failed: ${err.trim() || `exit ${code}`}`))));
  });
}

/**
 * A qcow2 image is converted (qemu-img convert -O raw) and compressed (zstd) into a scratch directory
 * first: agents serve and runners write plain or compressed raw disks only. Needs scratch space for the
 * raw disk (UNDERLAY_CACHE or the system temp directory).
 */
async function qcow2ToZstd(file: string, scratch: string): Promise<string> {
  const raw = join(scratch, `${basename(file)}.raw`);
  process.stderr.write(`${file} is qcow2: converting to raw (qemu-img convert -O raw), then zstd\n`);
  await run('qemu-img', ['convert', '-O', 'raw', file, raw], 'install qemu-utils, or convert it yourself: qemu-img convert -O raw FILE FILE.raw');
  await run('zstd', ['-q', '-T0', '-3', '--rm', raw, '-o', `${raw}.zst`], 'install zstd');
  return `${raw}.zst`;
}

export interface PushResult {
  name: string;
  sha256: string;
  size: number;
  format?: ImageFormat;
  rawSha256?: string;
  rawSize?: number;
}

/** Hashes what needs hashing (streaming), then uploads each item through the artifacts API. */
export async function pushItems(cfg: ClientConfig, items: PushItem[], have: Set<string>): Promise<PushResult[]> {
  const out: PushResult[] = [];
  for (const it of items) {
    const scratch = mkdtempSync(join(process.env.UNDERLAY_CACHE ?? tmpdir(), 'underlay-push-'));
    try {
      let file = it.file;
      let format: ImageFormat | undefined;
      let digest: ImageDigest;
      if (it.image?.known) {
        format = it.image.format as ImageFormat;
        digest = it.image.known;
      } else {
        let detected = await detectFormat(file);
        const wanted = it.image?.format ?? 'raw';
        if (detected === 'qcow2' && it.image) {
          if (wanted !== 'auto') throw new ImagePushError(`${file} is qcow2, not ${wanted}: pass --format auto (it is converted to raw + zstd) or convert it first`);
          file = await qcow2ToZstd(file, scratch);
          detected = 'zstd';
        }
        if (it.image) {
          if (wanted !== 'auto' && detected !== 'raw' && detected !== wanted)
            throw new ImagePushError(`${file} starts like ${detected}, not ${wanted}: pass --format ${detected} (or auto)`);
          format = wanted === 'auto' ? (detected as ImageFormat) : (wanted as ImageFormat);
        }
        const bar = progress(`hash ${basename(file)}`, statSync(file).size);
        digest = await digestImage(file, format ?? 'raw', (n) => bar.tick(n));
        bar.done();
        if (it.image && digest.rawSize < 512) throw new ImagePushError(`${it.file} decompresses to ${digest.rawSize} bytes: not a disk image`);
      }
      const meta = { name: it.name, replace: it.replace, ...(it.image ? { image: { format: format!, rawSha256: digest.rawSha256, rawSize: digest.rawSize } } : {}) };
      await uploadArtifact(cfg, have.has(digest.sha256) ? null : file, digest.sha256, meta);
      have.add(digest.sha256);
      out.push({ name: it.name, sha256: digest.sha256, size: digest.size, ...(it.image ? { format: format!, rawSha256: digest.rawSha256, rawSize: digest.rawSize } : {}) });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  return out;
}
