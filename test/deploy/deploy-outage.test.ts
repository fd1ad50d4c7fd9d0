/**
 * A deploy survives a central outage and an agent restart (issue 12), on real firmware: one rack, the
 * built Debian image, one BIOS machine (SeaBIOS + iPXE, QEMU TCG). Discovered and ready, `machines deploy`
 * starts; once the write is under way the central is killed (-9) and the agent killed and started again
 * (offline: no central). The runner resumes its download from the restarted agent, writes and verifies the
 * image, the agent turns netboot off, the installed OS boots and cloud-init configures it from the agent,
 * all with the central down; started again, the central learns `deployed` from the agent.
 * The steps are MachineWalk's (test/deploy/deploy.test-support.ts).
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { RACK_PREREQS, Rack } from '../e2e/rack.js';
import { buildImage, IMAGE_CACHE, type Built } from '../images/debian-image.test-support.js';
import { checkPrereqs } from '../support/require.js';
import { MachineWalk, pushImages } from './deploy.test-support.js';

const ready = checkPrereqs('deploy through an outage', {
  ...RACK_PREREQS,
  commands: [...RACK_PREREQS.commands, 'mmdebstrap', 'zstd', 'debugfs', 'sfdisk', 'curl'],
});
const MIN = 60_000;

describe.skipIf(!ready)('deploy through a central outage and an agent restart', () => {
  let rack: Rack;
  let walk: MachineWalk;

  beforeAll(async () => {
    const image: Built = buildImage(['--out', IMAGE_CACHE]);
    rack = await Rack.start({ prefix: 'uldout', dhcp: 'full' });
    pushImages(rack, image);
    walk = new MachineWalk(rack, image, { firmware: 'bios', mac: '52:54:00:de:0a:01', name: 'outage-01' });
  }, 90 * MIN);

  afterAll(() => rack?.destroy());

  it('an unknown machine PXE boots, is discovered and becomes ready; the agent holds the image', () => walk.discover(), 30 * MIN);

  it('the deploy rides out the central killed and the agent restarted mid-write: netboot off, the OS boots and is configured offline, deployed once the central is back', () => walk.deployThroughOutage(), 90 * MIN);
});
