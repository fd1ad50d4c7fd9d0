import type { CentralFeature } from '../api/feature.js';
import { TOKENS } from '../auth/tokens.js';
import { registerAdminTokenRoutes } from './admin-token-routes.js';
import { registerTokenRoutes } from './routes.js';

/** API tokens: `/api/v1/tokens` and the admin token's rotation. The token service itself is the API kit's (central/auth). */
export function tokensFeature(): CentralFeature {
  return {
    name: 'tokens',
    collections: [{ name: TOKENS, unique: [] }],
    routes: (app, deps) => {
      registerTokenRoutes(app, deps);
      registerAdminTokenRoutes(app, deps);
    },
  };
}
