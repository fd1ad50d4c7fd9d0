import type { Condition, GroupRule } from '../../shared/api/ansible-inventory.js';
import type { Machine } from '../../shared/api/resources.js';
import type { InventoryContext, Params } from './context.js';

/** Operator group rules (keyed and conditional), compiled once per render and evaluated per host. */

export interface CompiledCondition {
  path: string[];
  op: Condition['op'];
  value: unknown;
  num?: number;
}

export type CompiledRule = { rule: GroupRule } & ({ kind: 'keyed'; path: string[]; prefix: string } | { kind: 'condition'; group: string; when: CompiledCondition[] });

/** Rules in name order (the order their groups are planned in), paths split once. */
export function compileRules(rules: readonly GroupRule[]): CompiledRule[] {
  return [...rules]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((rule): CompiledRule => {
      if (rule.kind === 'keyed') return { rule, kind: 'keyed', path: rule.key.split('.'), prefix: rule.prefix ?? rule.name };
      const list = Array.isArray(rule.when) ? rule.when : [rule.when];
      return { rule, kind: 'condition', group: rule.group, when: list.map((c) => ({ path: c.path.split('.'), op: c.op, value: c.value, num: num(c.value) })) };
    });
}

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** Reads a rule path off a machine: `facts.…`, `params.…` (non-secret resolved params) or a machine field. */
export function readPath(ctx: InventoryContext, m: Machine, base: Params, path: readonly string[]): unknown {
  let v: unknown;
  let i = 1;
  if (path[0] === 'facts') v = m.facts;
  else if (path[0] === 'params') {
    if (path.length < 2) return undefined;
    v = ctx.param(m, base, path[1]!);
    i = 2;
  } else v = (m as Record<string, unknown>)[path[0]!];
  for (; i < path.length; i++) {
    if (v === null || typeof v !== 'object') return undefined;
    const seg = path[i]!;
    v = Object.hasOwn(v, seg) ? (v as Record<string, unknown>)[seg] : undefined;
  }
  return v;
}

/** Whether every condition of a conditional rule holds for a machine (no closure per host). */
export function allHold(ctx: InventoryContext, m: Machine, base: Params, when: readonly CompiledCondition[]): boolean {
  for (let i = 0; i < when.length; i++) if (!holds(readPath(ctx, m, base, when[i]!.path), when[i]!)) return false;
  return true;
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (typeof a !== 'object' && typeof b !== 'object') return String(a) === String(b);
  return JSON.stringify(a) === JSON.stringify(b);
}

export function holds(v: unknown, c: { op: Condition['op']; value: unknown; num?: number }): boolean {
  switch (c.op) {
    case 'exists':
      return (v !== undefined && v !== null) === (c.value === undefined ? true : c.value === true);
    case 'eq':
      return same(v, c.value);
    case 'ne':
      return !same(v, c.value);
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const x = num(v);
      const y = c.num ?? num(c.value);
      if (x === undefined || y === undefined) return false;
      return c.op === 'gt' ? x > y : c.op === 'gte' ? x >= y : c.op === 'lt' ? x < y : x <= y;
    }
    case 'in':
      if (!Array.isArray(c.value)) return false;
      if (Array.isArray(v)) return v.some((e) => (c.value as unknown[]).some((w) => same(e, w)));
      return (c.value as unknown[]).some((w) => same(v, w));
    case 'contains':
      if (Array.isArray(v)) return v.some((e) => same(e, c.value));
      if (typeof v === 'string') return v.includes(String(c.value));
      return false;
  }
}

/** The values a keyed rule makes groups from: scalars, each scalar of an array, `key_value` of an object. */
export function keyedValues(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  if (Array.isArray(v)) return v.filter((e) => e !== null && e !== undefined && e !== '' && typeof e !== 'object').map(String);
  if (typeof v === 'object') {
    return Object.entries(v as Record<string, unknown>)
      .filter(([, e]) => e !== null && e !== undefined && typeof e !== 'object')
      .map(([k, e]) => `${k}_${String(e)}`);
  }
  return [String(v)];
}
