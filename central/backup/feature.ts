import type { CentralFeature } from '../api/feature.js';
import { registerBackupRoutes } from './routes.js';

/** Backup (issue 19): a consistent copy of the store while serving; restore is `underlay central restore` (offline). */
export function backupFeature(): CentralFeature {
  return { name: 'backup', routes: (app, deps) => registerBackupRoutes(app, deps) };
}
