import type { KindHandler } from './handler.js';

export const syncState: KindHandler<'sync-state'> = async (_env, _p, ctx) => {
  ctx.requestState();
  return { state: 'succeeded', output: `had state ${ctx.desiredState.version ?? 'none'}; asked the central for a fresh copy` };
};
