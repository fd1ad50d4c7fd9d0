import type { Role } from '../../shared/api/resources.js';

/** What a route needs. `join` is only for one-time agent-join tokens. */
export type Permission = 'read' | 'write' | 'admin' | 'join';

const GRANTS: Record<Role, readonly Permission[]> = {
  admin: ['read', 'write', 'admin'],
  operator: ['read', 'write'],
  viewer: ['read'],
  'agent-join': ['join'],
};

export function allows(role: Role, need: Permission): boolean {
  return GRANTS[role].includes(need);
}
