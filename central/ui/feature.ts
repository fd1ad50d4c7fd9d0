import type { CentralFeature } from '../api/feature.js';
import { registerBootFilesRoute } from './boot-files-route.js';
import { registerChangeStreamRoute } from './change-stream-route.js';
import { registerConsoleRoutes } from './console-routes.js';
import { registerDocsRoutes } from './docs-routes.js';
import { registerWhoamiRoute } from './whoami-route.js';

/**
 * The operator console at `/ui` (a Preact app built into dist by scripts/build-ui.mjs), `/docs`
 * (Swagger UI from the package) and the change stream its live views follow. The console signs in with
 * an API token it keeps in memory and sends as a bearer header: no cookie, so a cross-site form cannot
 * act with the operator's rights, and roles and site scopes are the API's own.
 */
export function uiFeature(): CentralFeature {
  return {
    name: 'ui',
    routes: (app, deps) => {
      registerConsoleRoutes(app);
      registerDocsRoutes(app);
      registerChangeStreamRoute(app, deps);
      registerWhoamiRoute(app, deps);
      registerBootFilesRoute(app, deps);
    },
  };
}
