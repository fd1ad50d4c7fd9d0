import { GroupRule, GroupRuleCreate, GroupRulePatch, type GroupRule as GroupRuleT } from '../../shared/api/ansible-inventory.js';
import { ApiError } from '../api/api-error.js';
import { defaultMerge, type ResourceSpec } from '../api/crud.js';
import type { CollectionSpec, Doc } from '../store/types.js';

export const GROUP_RULES = 'group-rules';

export const groupRulesCollection: CollectionSpec = { name: GROUP_RULES, unique: [{ field: 'name', values: (d: Doc) => [String(d.name)] }] };

/** Operator-defined inventory groups, CRUD at /api/v1/group-rules. */
export const groupRulesResource: ResourceSpec<GroupRuleT> = {
  collection: GROUP_RULES,
  path: 'group-rules',
  label: 'group-rule',
  tag: 'Inventory',
  schema: GroupRule,
  createSchema: GroupRuleCreate,
  patchSchema: GroupRulePatch,
  build: (input, { id, now }) => ({ id, ...(input as object), createdAt: now, updatedAt: now }) as GroupRuleT,
  merge: (doc, patch, now) => {
    const next = defaultMerge(doc as GroupRuleT & Doc, patch, now) as Record<string, unknown>;
    // Switching kind drops the other kind's fields.
    if (next.kind === 'keyed') {
      delete next.group;
      delete next.when;
    } else {
      delete next.key;
      delete next.prefix;
    }
    return next as GroupRuleT;
  },
  // A patch may leave a rule half one kind, half the other: validate the whole result.
  check: (doc) => {
    const { id: _id, createdAt: _c, updatedAt: _u, ...rest } = doc as GroupRuleT & Record<string, unknown>;
    const parsed = GroupRuleCreate.safeParse(rest);
    if (!parsed.success) {
      const details = parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message }));
      throw ApiError.badRequest(`invalid group rule: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
    }
  },
};
