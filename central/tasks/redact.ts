import type { Role } from '../../shared/api/resources.js';
import type { TaskDoc } from './service.js';

export const REDACTED = '[redacted]';
const SHELL_KINDS = new Set(['run-script', 'exec', 'put-file', 'fetch-file']);

/**
 * What a reader may see of a task (docs/decisions.md): a task created `secret: true` shows its payload
 * and output to admins only; a run-script task's payload (the script) and output are never shown to
 * viewers, nor are those of Ansible's exec, put-file and fetch-file (commands, file contents). The signed envelope is never shown.
 */
export function taskView(t: TaskDoc, role: Role): Omit<TaskDoc, 'signed'> {
  const { signed: _s, ...rest } = t;
  const hidden = (t.secret && role !== 'admin') || (SHELL_KINDS.has(t.kind) && role === 'viewer');
  if (!hidden) return rest;
  return { ...rest, payload: REDACTED, ...(rest.output !== undefined ? { output: REDACTED } : {}) };
}
