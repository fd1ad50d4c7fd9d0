import type { Machine } from '../../shared/api/resources.js';
import { matchesSelector, parseSelector } from '../../shared/api/selector.js';
import type { StartRuns, Workflow } from '../../shared/api/workflows.js';
import { InvalidError, NotFoundError } from '../../shared/errors/domain-errors.js';
import { inScope, requireWritableSite, type Scope } from '../auth/scope.js';
import { MACHINES } from '../machines/resources.js';
import type { Store } from '../store/types.js';
import { WORKFLOWS } from '../workflows/resources.js';

/** The workflow and the machines a start request names (by name or id, or a selector), within the caller's scope. */
export function runTargets(store: Store, req: StartRuns, scope: Scope): { workflow: Workflow; machines: Machine[] } {
  const workflow = store.findUnique<Workflow>(WORKFLOWS, 'name', req.workflow);
  if (!workflow) throw new InvalidError(`workflow "${req.workflow}" does not exist`, [{ path: 'workflow', message: 'unknown workflow' }]);
  let machines: Machine[];
  if (req.selector) {
    const sel = parseSelector(req.selector);
    machines = store.list<Machine>(MACHINES).items.filter((m) => matchesSelector(sel, m) && inScope(scope, m.site));
    if (machines.length === 0) throw new InvalidError(`no machine matches ${req.selector}`, [{ path: 'selector', message: 'no match' }]);
  } else {
    machines = [...new Set(req.machines)].map((ref) => {
      const m = store.get<Machine>(MACHINES, ref) ?? store.findUnique<Machine>(MACHINES, 'name', ref);
      if (!m) throw new NotFoundError(`machine "${ref}" not found`);
      return m;
    });
  }
  // A body naming another site's machine is a forbidden write (403), as for every body naming a site.
  for (const m of machines) requireWritableSite(scope, m.site, `machines of site`);
  return { workflow, machines };
}
