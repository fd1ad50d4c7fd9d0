/**
 * The deploy on UEFI firmware (OVMF, its own virtio-net PXE, iPXE chain-loaded over TFTP): see
 * test/deploy/deploy.test-support.ts. After netboot goes off, the agent's script `exit`s back to the firmware's
 * boot order, whose next entry is the virtio disk (EFI/BOOT/BOOTX64.EFI: systemd-boot).
 */
import { deploySuite } from './deploy.test-support.js';

deploySuite({ firmware: 'uefi', prefix: 'uldepefi', mac: '52:54:00:de:ef:01' });
