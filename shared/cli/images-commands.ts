import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { resolveClientConfig } from '../client/api-client.js';
import { downloadTo, uploadArtifact } from '../client/transfer.js';
import { action, globals, type GlobalOptions } from './context.js';
import { imageBuildCommand, type ImageBuildOptions } from './image-build.js';
import { print } from './output.js';

interface Artifact {
  url: string;
  sha256?: string;
}

/** `underlay images build discovery|debian` and `underlay images fetch <bootenv>`. */
export function registerImageCommands(program: Command): void {
  const images = program.command('images').description('boot images: build the discovery image, fetch boot environment artifacts into the central');
  images
    .command('build <image>')
    .description('build an image from Debian packages: "discovery" (kernel + initramfs) or "debian" (a bootable BIOS+UEFI disk image); prints the output directory last')
    .option('--force', 'rebuild even if cached')
    .option('--release <codename>', 'debian: Debian release (default: this host\'s)')
    .option('--size <size>', 'debian: disk size, e.g. 2G (default 2G)')
    .option('--packages <p,...>', 'debian: extra packages to install')
    .option('--ssh', 'debian: include an SSH server (host keys made at first boot)')
    .option('--out <dir>', 'debian: output base directory (default $UNDERLAY_CACHE/images/debian)')
    .action(
      action(async (image: string, o: ImageBuildOptions) => {
        const { script, args } = imageBuildCommand(image, o);
        const path = fileURLToPath(new URL(`../../../${script}`, import.meta.url));
        const code = await new Promise<number>((resolve) => {
          const p = spawn('bash', [path, ...args], { stdio: 'inherit' });
          p.on('exit', (c) => resolve(c ?? 1));
        });
        if (code !== 0) throw new Error(`image build failed (exit ${code})`);
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
        const have = new Set((await client.call<{ items: { sha256: string }[] }>('GET', '/api/v1/artifacts?limit=10000')).items.map((a) => a.sha256));
        const tmp = mkdtempSync(join(tmpdir(), 'underlay-fetch-'));
        const results: { url: string; sha256: string; result: string }[] = [];
        try {
          for (const a of wanted) {
            if (!a.sha256 && !o.allowUnpinned) throw new Error(`${a.url} has no sha256 in boot environment ${name}: pin one, or pass --allow-unpinned`);
            if (a.sha256 && have.has(a.sha256)) {
              await uploadArtifact(cfg, null, a.sha256, [a.url]);
              results.push({ url: a.url, sha256: a.sha256, result: 'already stored' });
              continue;
            }
            const file = join(tmp, 'artifact');
            const got = await downloadTo(a.url, file, a.url.split('/').pop() ?? 'artifact');
            if (a.sha256 && got.sha256 !== a.sha256) throw new Error(`${a.url}: downloaded bytes hash to sha256:${got.sha256}, but the boot environment pins sha256:${a.sha256}; not stored`);
            await uploadArtifact(cfg, file, got.sha256, [a.url], a.url.split('/').pop());
            results.push({ url: a.url, sha256: got.sha256, result: 'stored' });
          }
        } finally {
          rmSync(tmp, { recursive: true, force: true });
        }
        print(results, g.format);
      }),
    );
}
