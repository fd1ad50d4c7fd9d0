/**
 * The deploy on UEFI firmware (OVMF, its own virtio-net PXE, iPXE chain-loaded over TFTP): see
 * test/deploy/deploy.test-support.ts. After netboot goes off, the agent's DHCP gives no boot file and the
 * firmware goes on to the next entry of its boot order, the virtio disk (EFI/BOOT/BOOTX64.EFI: systemd-boot).
 *
 * NOT YET RUN (issue 12 session 4 ran out of time): opt in with UNDERLAY_TEST_DEPLOY_UEFI=1 until one run
 * is green; it is then meant to run in CI like deploy-bios.
 */
import { describe, it } from 'vitest';
import { deploySuite } from './deploy.test-support.js';

if (process.env.UNDERLAY_TEST_DEPLOY_UEFI === '1') deploySuite({ firmware: 'uefi', prefix: 'uldepefi', mac: '52:54:00:de:ef:01' });
else describe('deploy: uefi (opt-in, never run yet: UNDERLAY_TEST_DEPLOY_UEFI=1)', () => it.skip('not run', () => undefined));
