/**
 * How the test suite is split so that independent work overlaps on a 2-core CI machine (see
 * docs/decisions.md, "Test suite: lanes"):
 *
 * - `e2e-qemu`: the files that boot QEMU (TCG, no KVM): one file at a time, in their own vitest process
 *   (`scripts/test-suite.mjs`, lane 0). A TCG vCPU takes a whole core; two at once would starve each other.
 * - `unit` + `e2e`: everything else, in a second vitest process (lane 1) that runs beside the QEMU lane.
 *
 * Files that run at the same time cannot collide by construction: network namespaces carry random names
 * (test/support/netns.ts), every temp dir is a mkdtemp, and loopback ports come from a block owned by the
 * lane and worker (test/support/ports.ts). `test/build/suite-lanes.test.ts` fails when a file that boots
 * QEMU is missing from QEMU_FILES.
 */
export const QEMU_FILES = [
  'test/e2e/bios.test.ts',
  'test/e2e/uefi.test.ts',
  'test/e2e/immutable.test.ts',
  'test/e2e/proxy.test.ts',
  'test/e2e/relay.test.ts',
  'test/discovery/discovery.test.ts',
  'test/lab/lab.test.ts',
  'test/power/ipmi-pxe.test.ts',
  'test/power/power-e2e.test.ts',
  'test/power/redfish.test.ts',
  'test/workflows/workflows-lab.test.ts',
  'test/deploy/deploy.test.ts',
  'test/deploy/deploy-outage.test.ts',
];

/**
 * Order hints, applied before vitest's own order (longest first by the last run's durations): the Debian
 * image's own test builds the image (mmdebstrap, under build-debian.sh's per-hash lock) in lane 1 at the
 * start of the run, while the QEMU lane boots machines; the deploy files, which need that image, run last
 * in the QEMU lane and find it built (or wait on the same lock: nothing is built twice).
 */
export const RUN_FIRST = ['test/images/debian-image.test.ts'];
export const RUN_LAST = ['test/deploy/deploy.test.ts', 'test/deploy/deploy-outage.test.ts'];

/** -1 for RUN_FIRST, 1 for RUN_LAST, 0 otherwise (`rel` is relative to the repository, with '/'). */
export function orderHint(rel: string): number {
  if (RUN_FIRST.includes(rel)) return -1;
  if (RUN_LAST.includes(rel)) return 1;
  return 0;
}
