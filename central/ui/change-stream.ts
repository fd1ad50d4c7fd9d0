import type { Change } from '../store/change-feed.js';
import { inScope, type Scope } from '../auth/scope.js';

/** The collections the console follows live (its views refetch what changed through the ordinary API). */
export const STREAMED_COLLECTIONS = ['tasks', 'runs', 'machines', 'agents'] as const;

/**
 * What the stream says about one change: which object changed and, for the views' badges, its state. No
 * document body: a reader fetches it through the API, which applies the role's redaction (a viewer never
 * sees a run-script's output) and the site scope.
 */
export interface ChangeNote {
  collection: string;
  id: string;
  type: 'put' | 'delete';
  state?: string;
}

/** The note for a change this caller may hear of, or undefined (another site's object, another collection). */
export function changeNote(c: Change, scope: Scope): ChangeNote | undefined {
  if (!(STREAMED_COLLECTIONS as readonly string[]).includes(c.collection)) return undefined;
  const doc = (c.doc ?? c.before) as { site?: unknown; state?: unknown } | undefined;
  if (!doc || !inScope(scope, doc.site)) return undefined;
  return { collection: c.collection, id: c.id, type: c.type, ...(c.type === 'put' && typeof doc.state === 'string' ? { state: doc.state } : {}) };
}
