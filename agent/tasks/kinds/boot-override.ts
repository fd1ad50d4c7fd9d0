import type { KindHandler } from './handler.js';
import { unknownMachine } from './handler.js';

/** `set-netboot` and `set-bootenv`: a local override of the machine's boot until the next state arrives. */
export const setNetboot: KindHandler<'set-netboot'> = async (env, p, ctx) =>
  env.machine && (await ctx.desiredState.override(env.machine, { netboot: p.netboot })) ? { state: 'succeeded', output: `netboot = ${p.netboot}` } : unknownMachine(env);

export const setBootenv: KindHandler<'set-bootenv'> = async (env, p, ctx) =>
  env.machine && (await ctx.desiredState.override(env.machine, { bootenv: p.bootenv })) ? { state: 'succeeded', output: `bootenv = ${p.bootenv}` } : unknownMachine(env);
