import { z } from 'zod';
import { Name, Timestamps } from './common.js';

/**
 * The Ansible dynamic inventory: group rules (stored in the central) and the shape of the `--list`
 * document. See docs/ansible.md.
 */

/** A dotted path into a machine: `facts.cpu.model`, `params.role`, `site`, `rack`, `state`, `facts.disks.0.model`. */
export const RulePath = z
  .string()
  .min(1)
  .max(256)
  .regex(
    /^(facts(\.[^.\s]+)+|params\.[^.\s]+(\.[^.\s]+)*|name|site|rack|bootenv|state|profiles|address|serial|uuid|macs)$/,
    'a path like facts.cpu.model, params.role, site, rack, bootenv, state, profiles',
  );

export const ConditionOps = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'contains', 'exists'] as const;
export const ConditionOp = z.enum(ConditionOps);
export type ConditionOp = z.infer<typeof ConditionOp>;

export const Condition = z
  .object({
    path: RulePath,
    op: ConditionOp,
    /** `in`: an array; `gt|gte|lt|lte`: a number (or a numeric string); `exists`: optional boolean (default true). */
    value: z.unknown().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.op === 'in' && !Array.isArray(c.value)) ctx.addIssue({ code: 'custom', path: ['value'], message: '"in" needs an array value' });
    if (['gt', 'gte', 'lt', 'lte'].includes(c.op) && !(typeof c.value === 'number' || (typeof c.value === 'string' && c.value.trim() !== '' && Number.isFinite(Number(c.value))))) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `"${c.op}" needs a number value` });
    }
    if (c.op === 'exists' && c.value !== undefined && typeof c.value !== 'boolean') ctx.addIssue({ code: 'custom', path: ['value'], message: '"exists" takes true or false' });
    if (['eq', 'ne', 'contains'].includes(c.op) && c.value === undefined) ctx.addIssue({ code: 'custom', path: ['value'], message: `"${c.op}" needs a value` });
  })
  .meta({ id: 'GroupCondition' });
export type Condition = z.infer<typeof Condition>;

const ruleCommon = {
  name: Name,
  description: z.string().max(1024).optional(),
};

/** Like Ansible's `keyed_groups`: one group per distinct value of `key` (arrays: one per element; objects: one per key_value). */
export const KeyedRuleFields = z.object({
  ...ruleCommon,
  kind: z.literal('keyed'),
  key: RulePath,
  /** Group name prefix; defaults to the rule's name. `""` uses the bare value. */
  prefix: z.string().max(63).optional(),
});

/** Like Ansible's `groups`: hosts whose `when` holds (all of them, when a list) join `group`. */
export const ConditionRuleFields = z.object({
  ...ruleCommon,
  kind: z.literal('condition'),
  group: z.string().min(1).max(63),
  when: z.union([Condition, z.array(Condition).min(1).max(16)]),
});

export const GroupRuleCreate = z.discriminatedUnion('kind', [KeyedRuleFields.strict(), ConditionRuleFields.strict()]);
export const GroupRulePatch = z
  .object({
    name: Name,
    description: z.string().max(1024),
    kind: z.enum(['keyed', 'condition']),
    key: RulePath,
    prefix: z.string().max(63),
    group: z.string().min(1).max(63),
    when: z.union([Condition, z.array(Condition).min(1).max(16)]),
  })
  .partial()
  .strict();

export const GroupRule = z
  .discriminatedUnion('kind', [KeyedRuleFields.extend({ id: z.string(), ...Timestamps }), ConditionRuleFields.extend({ id: z.string(), ...Timestamps })])
  .meta({ id: 'GroupRule', description: 'An operator-defined inventory group: keyed (one group per value) or conditional.' });
export type GroupRule = z.infer<typeof GroupRule>;

export const InventoryQuery = z.object({
  site: z.string().max(63).optional().describe('only machines of this site'),
  group: z.string().max(128).optional().describe('only hosts of this (rendered) group'),
  prefix: z.string().max(32).optional().describe('prefix for every group name except all/ungrouped (default: the central default, UNDERLAY_INVENTORY_PREFIX)'),
});
export type InventoryQuery = z.infer<typeof InventoryQuery>;

/** One group of the `--list` document. */
export interface InventoryGroup {
  hosts?: string[];
  children?: string[];
  vars?: Record<string, unknown>;
}

/**
 * How the inventory marks a value unsafe for Ansible: `{"__ansible_unsafe": "text"}`. Ansible's JSON
 * decoder turns it into a string that is never templated. Every string a machine reported (its
 * `underlay_facts`) is sent this way; operator-authored values (params, group vars) are sent plain.
 */
export const ANSIBLE_UNSAFE_KEY = '__ansible_unsafe';
export type UnsafeText = { [ANSIBLE_UNSAFE_KEY]: string };

/** Ansible's `--list` document: groups plus `_meta.hostvars`. */
export type InventoryDocument = Record<string, InventoryGroup> & { _meta?: { hostvars: Record<string, Record<string, unknown>> } };

export const InventoryDocumentSchema = z
  .record(z.string(), z.unknown())
  .meta({
    id: 'AnsibleInventory',
    description:
      'Ansible `--list` document: `{ group: { hosts, children, vars }, …, _meta: { hostvars } }`. Every string in a host\'s `underlay_facts` (reported by the machine) is marked unsafe as `{"__ansible_unsafe": "…"}`, so Ansible never templates it.',
  });

export const HostVarsSchema = z
  .record(z.string(), z.unknown())
  .meta({ id: 'AnsibleHostVars', description: 'The variables of one host (`--host`); strings in `underlay_facts` are marked `{"__ansible_unsafe": "…"}`.' });

/** A service endpoint as the inventory shows it. */
export interface InventoryEndpoint {
  id: string;
  machine?: string;
  address: string;
  port: number;
  status: string;
}
