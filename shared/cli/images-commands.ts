import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { requirePinned } from '../bootenv/pinning.js';
import { resolveClientConfig } from '../client/api-client.js';
import { downloadTo, uploadArtifact } from '../client/transfer.js';
import { action, globals, type GlobalOptions } from './context.js';
import { imageBuildCommand, type ImageBuildOptions } from './image-build.js';
import { planPush, pushItems } from './image-push.js';
import { print } from './output.js';

interface Artifact {
  url: string;
  sha256?: string;
}

/** The sha256 of every artifact the central holds (so a re-push sends no bytes). */
async function storedArtifacts(c: Command): Promise<Set<string>> {
  const have = new Set<string>();
  for (let offset = 0; ; offset += 10_000) {
    const page = await globals(c).client().call<{ items: { sha256: string }[]; total: number }>('GET', `/api/v1/artifacts?limit=10000&offset=${offset}`);
    for (const a of page.items) have.add(a.sha256);
    if (page.items.length === 0 || offset + page.items.length >= page.total) return have;
  }
}

/** `underlay images build|push|list|show|delete|fetch`. */
export function registerImageCommands(program: Command): void {
  const images = program
    .command('images')
    .description('disk images and boot images: build them, push them into the central (agents pull them over mTLS), fetch boot environment artifacts');
  images
    .command('build <image>')
    .description('build an image from Debian packages: "discovery" (kernel + initramfs) or "debian" (a bootable BIOS+UEFI disk image); prints the output directory last')
    .option('--force', 'rebuild even if cached')
    .option('--release <codename>', 'debian: Debian release (default: this host\'s)')
    .option('--size <size>', 'debian: disk size, e.g. 2G (default 2G)')
    .option('--packages <p,...>', 'debian: extra packages to install')
    .option('--ssh', 'debian: include an SSH server (host keys made at first boot)')
    .option('--out <dir>', 'debian: output base directory (default $UNDERLAY_CACHE/images/debian)')
    .option('--push', 'then push the output into the central (UNDERLAY_URL/--url): discovery is served by every agent, debian becomes an image')
    .option('--name <name>', 'debian with --push: the image name (default: the manifest\'s, e.g. debian-bookworm)')
    .option('--replace', 'debian with --push: move the name to this build if another image holds it')
    .action(
      action(async (image: string, o: ImageBuildOptions & { push?: boolean; name?: string; replace?: boolean }, c: Command) => {
        const { push, name, replace, ...build } = o;
        if (!push && (name !== undefined || replace)) throw new Error('--name and --replace go with --push');
        const { script, args } = imageBuildCommand(image, build);
        const path = fileURLToPath(new URL(`../../../${script}`, import.meta.url));
        let last = '';
        const code = await new Promise<number>((resolve) => {
          const p = spawn('bash', [path, ...args], { stdio: ['inherit', 'pipe', 'inherit'] });
          p.stdout.on('data', (d: Buffer) => {
            // With --push, stdout carries the push result: the build's own report goes to stderr.
            (push ? process.stderr : process.stdout).write(d);
            const lines = (last + d.toString()).split('\n').filter((l) => l.trim() !== '');
            last = lines[lines.length - 1] ?? last;
          });
          p.on('exit', (x) => resolve(x ?? 1));
        });
        if (code !== 0) throw new Error(`image build failed (exit ${code})`);
        if (!push) return;
        // The scripts print the output directory last.
        const items = planPush(last.trim(), { ...(name !== undefined ? { name } : {}), replace: !!replace });
        print(await pushItems(resolveClientConfig(c.optsWithGlobals<GlobalOptions>()), items, await storedArtifacts(c)), globals(c).format);
      }),
    );
  images
    .command('push <path>')
    .description(
      'push a disk image into the central: a raw, qcow2 (converted to raw + zstd with qemu-img), zstd, xz or gzip file, or the output directory of "images build debian|discovery". ' +
        'Computes the sha256 of the file and of the raw disk it decompresses to (streaming); agents pull it over mTLS and serve it at /files/sha256/<sha256>. ' +
        'A --name with a slash (discovery/vmlinuz) pushes a boot file that every agent serves in place of that boot-dir path.',
    )
    .option('--name <name>', 'image name (unique), e.g. debian-12; required for a file')
    .option('--format <format>', 'raw, zstd, xz, gzip or auto (from the file\'s first bytes; the default)')
    .option('--replace', 'point the name at these bytes even if it names another image')
    .action(
      action(async (path: string, o: { name?: string; format?: string; replace?: boolean }, c: Command) => {
        const items = planPush(path, o);
        print(await pushItems(resolveClientConfig(c.optsWithGlobals<GlobalOptions>()), items, await storedArtifacts(c)), globals(c).format);
      }),
    );
  images
    .command('list')
    .description('list disk images (name, artifact sha256 and size, format, raw sha256 and size)')
    .action(
      action(async (_o: unknown, c: Command) => {
        const g = globals(c);
        const page = await g.client().call<{ items: Record<string, unknown>[] }>('GET', '/api/v1/images');
        print(page.items, g.format, ['name', 'format', 'size', 'rawSize', 'sha256']);
      }),
    );
  images
    .command('show <name>')
    .description('show one disk image')
    .action(
      action(async (name: string, _o: unknown, c: Command) => {
        const g = globals(c);
        print(await g.client().call('GET', `/api/v1/images/${encodeURIComponent(name)}`), g.format);
      }),
    );
  images
    .command('delete <name>')
    .description('delete a disk image nothing uses (its record and its bytes in the central; agents keep copies they have)')
    .action(
      action(async (name: string, _o: unknown, c: Command) => {
        await globals(c).client().call('DELETE', `/api/v1/images/${encodeURIComponent(name)}`);
        process.stderr.write(`image ${name} deleted\n`);
      }),
    );
  images
    .command('fetch <bootenv>')
    .description("download a boot environment's kernel and initrds, verify their sha256 and store them in the central (agents then pull them from the central)")
    .option('--allow-unpinned', 'accept artifacts whose boot environment pins no sha256 (records the hash of what was downloaded)')
    .action(
      action(async (name: string, o: { allowUnpinned?: boolean }, c: Command) => {
        const g = globals(c);
        const client = g.client();
        const cfg = resolveClientConfig(c.optsWithGlobals<GlobalOptions>());
        const env = await client.call<{ kernel?: Artifact; initrds?: Artifact[] }>('GET', `/api/v1/bootenvs/${encodeURIComponent(name)}`);
        const wanted = [...(env.kernel ? [env.kernel] : []), ...(env.initrds ?? [])].filter((a) => /^https?:\/\//.test(a.url));
        if (wanted.length === 0) {
          process.stderr.write(`boot environment ${name} names no upstream artifacts (its files are served from the agents' boot dirs)\n`);
          return;
        }
        // Refused before anything is downloaded or stored, naming every unpinned URL.
        requirePinned({ name, kernel: env.kernel, initrds: env.initrds ?? [] }, !!o.allowUnpinned);
        const have = await storedArtifacts(c);
        const tmp = mkdtempSync(join(tmpdir(), 'underlay-fetch-'));
        const results: { url: string; sha256: string; result: string }[] = [];
        try {
          for (const a of wanted) {
            if (a.sha256 && have.has(a.sha256)) {
              await uploadArtifact(cfg, null, a.sha256, { urls: [a.url] });
              results.push({ url: a.url, sha256: a.sha256, result: 'already stored' });
              continue;
            }
            const file = join(tmp, 'artifact');
            const got = await downloadTo(a.url, file, a.url.split('/').pop() ?? 'artifact');
            if (a.sha256 && got.sha256 !== a.sha256) throw new Error(`${a.url}: downloaded bytes hash to sha256:${got.sha256}, but the boot environment pins sha256:${a.sha256}; not stored`);
            await uploadArtifact(cfg, file, got.sha256, { urls: [a.url] });
            results.push({ url: a.url, sha256: got.sha256, result: 'stored' });
          }
        } finally {
          rmSync(tmp, { recursive: true, force: true });
        }
        print(results, g.format);
      }),
    );
}
