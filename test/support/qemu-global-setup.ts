import { buildDiscovery } from '../discovery/discovery-image.js';
import { checkPrereqs } from './require.js';

/**
 * globalSetup of the `e2e-qemu` project: builds (or finds in its cache) the discovery image once, before
 * the first file that boots a machine. Every QEMU file serves it; without this, the first one paid the
 * cold build (an xz -9 of the initrd, minutes on a loaded host) inside its 5-minute beforeAll. No time limit
 * here; build-discovery.sh's per-hash lock lets lane 1's users of the same image wait for this build.
 * A missing prerequisite fails here in CI and leaves the files to skip themselves elsewhere.
 */
export default function setup(): void {
  if (!checkPrereqs('discovery image (e2e-qemu global set-up)', { commands: ['busybox', 'openssl', 'apt-get', 'dpkg-deb', 'perl', 'xz'], files: ['/bin/busybox'] })) return;
  const t0 = Date.now();
  const built = buildDiscovery();
  console.log(`[e2e-qemu] discovery image ready in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${built.dir}`);
}
