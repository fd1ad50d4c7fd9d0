import type { InventoryDocument } from '../../shared/api/ansible-inventory.js';
import { InventoryContext, type InventorySource } from './context.js';
import { plan, type ViewOptions } from './plan.js';

/**
 * Ansible's `--list` document from the inventory. Pure: the route feeds it the store's collections,
 * the benchmark a synthetic data set. The route serves `renderInventoryBody` (body.ts: bytes written
 * in one pass, blocks cached between renders); `renderInventory` builds the same document as objects.
 */

export { HostBlockCache, RenderedBody, renderInventoryBody, type RenderOptions } from './body.js';
export { InventoryContext, RESERVED_PREFIX, type InventorySource } from './context.js';
export { UnknownGroupError, type ViewOptions } from './plan.js';

/** Renders the `--list` document as objects. Deterministic: same inventory and options → same document. */
export function renderInventory(src: InventorySource, opts: ViewOptions = {}): InventoryDocument {
  const p = plan(src, opts);
  const doc: Record<string, unknown> = {
    all: { children: ['ungrouped', ...p.groups.map(([n]) => n)], vars: p.allVars },
    ungrouped: { hosts: [] },
  };
  for (const [n, g, hosts] of p.groups) doc[n] = g.vars ? { hosts, vars: g.vars } : { hosts };
  const hostvars: Record<string, Record<string, unknown>> = {};
  for (let i = 0; i < p.machines.length; i++) {
    const m = p.machines[i]!;
    if (p.selected && !p.selected.has(m.name)) continue;
    hostvars[m.name] = p.ctx.hostVars(m, p.ctx.params(m, p.layers[i]!.params));
  }
  doc._meta = { hostvars };
  return doc as InventoryDocument;
}

/** The `--host NAME` variables of one machine, or undefined. */
export function renderHostVars(src: InventorySource, name: string): Record<string, unknown> | undefined {
  const m = src.machines.find((x) => x.name === name);
  if (!m) return undefined;
  return new InventoryContext(src).hostVars(m);
}
