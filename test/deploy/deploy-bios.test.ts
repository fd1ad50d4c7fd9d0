/**
 * The deploy on BIOS firmware (SeaBIOS + QEMU's iPXE ROM): see test/deploy/deploy.test-support.ts. After
 * netboot goes off, the agent's script boots the disk with `sanboot --drive 0x80`.
 */
import { deploySuite } from './deploy.test-support.js';

deploySuite({ firmware: 'bios', prefix: 'uldeploy', mac: '52:54:00:de:b1:01' });
