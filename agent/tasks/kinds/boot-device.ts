import type { KindHandler } from './handler.js';
import { withMachineBmc } from './power.js';

/** `boot-device`: the next boot device through the machine's BMC, once or persistent. */
export const bootDevice: KindHandler<'boot-device'> = (env, p, ctx) =>
  withMachineBmc(env, ctx, async (bmc) => {
    await bmc.setBootDevice(p.device, p.persistent);
    return { state: 'succeeded', output: `boot device ${p.device} (${p.persistent ? 'persistent' : 'next boot only'})` };
  });
