import { createApp } from '../api/app.js';
import { memoryApiDeps } from '../all-collections.test-support.js';
import { centralFeatures } from '../features.js';

/** The whole central API in process (every feature, a memory store), and tokens of any role. */
export async function uiTestApp() {
  const deps = await memoryApiDeps();
  const app = createApp(deps, { features: centralFeatures() });
  const token = async (role: 'admin' | 'operator' | 'viewer', site?: string) => (await deps.tokens.create({ role, name: `${role}${site ? `@${site}` : ''}`, ...(site ? { site } : {}) } as never)).token;
  return { app, store: deps.store, deps, token };
}
