import type { KindHandler } from './handler.js';

export const ping: KindHandler<'ping'> = async (_env, p) => ({ state: 'succeeded', output: `pong${p.message ? `: ${p.message}` : ''}` });
