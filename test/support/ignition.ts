import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The real `ignition` and `ignition-validate` from Debian's `ignition` package (downloaded once with
 * apt-get into the shared download cache, unpacked into a temp dir): `ignition` is the binary of its dracut
 * module, `ignition-validate` sits in usr/bin.
 */
export function ignitionBinaries(): { ignition: string; validate: string; dir: string } {
  const dl = join(process.env.UNDERLAY_CACHE ?? join(homedir(), '.cache/underlay'), 'downloads');
  mkdirSync(dl, { recursive: true });
  const find = () => readdirSync(dl).find((f) => /^ignition_.*_amd64\.deb$/.test(f));
  if (!find()) {
    // Into a private dir, then renamed into the cache: another file running now never reads a half-written .deb.
    const tmp = mkdtempSync(join(dl, '.dl-'));
    try {
      execFileSync('apt-get', ['download', '-q', 'ignition'], { cwd: tmp, stdio: 'ignore' });
      for (const f of readdirSync(tmp)) if (f.endsWith('.deb')) renameSync(join(tmp, f), join(dl, f));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const deb = find();
  if (!deb) throw new Error(`apt-get download ignition left no .deb in ${dl}`);
  const dir = mkdtempSync(join(tmpdir(), 'ul-ignition-deb-'));
  execFileSync('dpkg-deb', ['-x', join(dl, deb), dir]);
  const ignition = join(dir, 'usr/lib/dracut/modules.d/30ignition/ignition');
  const validate = join(dir, 'usr/bin/ignition-validate');
  for (const f of [ignition, validate]) if (!existsSync(f)) throw new Error(`the ignition package has no ${f}`);
  return { ignition, validate, dir };
}
