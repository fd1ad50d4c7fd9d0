/**
 * The deploy on real firmware (issue 12): one rack (a real central and site agent in a namespace), one
 * built Debian image, and two machines that walk their lifecycle at the same time (QEMU TCG, one vCPU
 * each): a BIOS machine (SeaBIOS + QEMU's iPXE ROM) and a UEFI machine (OVMF, its own PXE, iPXE over
 * TFTP). Each: PXE boot → discovered → ready; `machines deploy` writes and verifies the image with
 * progress; netboot goes off and the firmware boots the disk (BIOS: the agent's script sanboots it; UEFI:
 * no boot file, the next boot entry); cloud-init (the image's own) configures hostname, user, key and a
 * file from params, fetched from the agent with the per-deploy credential; the installed runner reports
 * (deployed); a signed run-script runs in the installed OS; a signed poweroff, then the disk is read from
 * the host (debugfs); power on, `machines release` wipes it and it returns ready through discovery.
 * The BIOS machine also refuses an image with one flipped byte first, and after its release is deployed
 * again configured by the real Ignition. After their first boot both machines meet and one
 * `ansible-playbook` (issue 15's collection: inventory plugin + the agent connection plugin) configures
 * both through the agent: the installed image has no SSH server. Steps are in test/deploy/deploy.test-support.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { RACK_PREREQS, Rack } from '../e2e/rack.js';
import { buildImage, IMAGE_CACHE, OVMF_CODE, type Built } from '../images/debian-image.test-support.js';
import { runAgentPlaybook } from '../ansible/agent-playbook.test-support.js';
import { Journey, Rendezvous } from '../support/journey.js';
import { checkPrereqs } from '../support/require.js';
import { MachineWalk, pushImages, STEP_TITLES, walkSteps, type PlaybookRun, type WalkOptions } from './deploy.test-support.js';

let rack: Rack;
/** Both machines meet after their first boot: one ansible-playbook run (issue 15) through the agent on both. */
const ansible = new Rendezvous<PlaybookRun>(2, () =>
  runAgentPlaybook({
    centralUrl: 'https://127.0.0.1:8443',
    token: readFileSync(join(rack.work, 'central', 'admin.token'), 'utf8').trim(),
    caFile: join(rack.work, 'central', 'ca.pem'),
    machines: MACHINES.map((m) => m.name),
    netns: rack.ns.name,
  }),
);
const MACHINES: WalkOptions[] = [
  { firmware: 'bios', mac: '52:54:00:de:b1:01', name: 'deployed-01', flipped: true, ignition: true, ansible },
  { firmware: 'uefi', mac: '52:54:00:de:ef:01', name: 'deployed-02', ansible },
];
const STEP_TIMEOUT = 120 * 60_000; // hang protection only: a step waits for its journey, which has its own limits

const ready = checkPrereqs('deploy (BIOS and UEFI)', {
  ...RACK_PREREQS,
  commands: [...RACK_PREREQS.commands, 'mmdebstrap', 'zstd', 'debugfs', 'dumpe2fs', 'sfdisk', 'curl'],
  files: [...RACK_PREREQS.files, OVMF_CODE],
});

describe.skipIf(!ready)('deploy: a BIOS and a UEFI machine, the built Debian image, cloud-init and Ignition', () => {
  let image: Built;
  const journeys = new Map<string, Journey>();

  beforeAll(async () => {
    image = buildImage(['--out', IMAGE_CACHE]);
    rack = await Rack.start({ prefix: 'uldeploy', dhcp: 'full' });
    pushImages(rack, image);
    for (const m of MACHINES) {
      // A walk that fails before the playbook releases the other one from the rendezvous.
      journeys.set(m.name, new Journey(m.name, new MachineWalk(rack, image, m).steps(), { onFail: () => ansible.abandon(m.name) }));
    }
  }, 3_600_000);

  afterAll(async () => {
    // Let both walks end (or fail) before the rack goes, so no step runs against a destroyed rack.
    await Promise.all([...journeys.values()].map((j) => j.finished()));
    rack?.destroy();
  }, STEP_TIMEOUT);

  for (const m of MACHINES) {
    for (const step of walkSteps(m)) {
      it(`${m.firmware} (${m.name}) ${step}: ${STEP_TITLES[step]}`, () => journeys.get(m.name)!.step(step), STEP_TIMEOUT);
    }
  }
});
