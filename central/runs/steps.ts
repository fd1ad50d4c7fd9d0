import type { z } from 'zod';
import { ActionWith, type Step } from '../../shared/api/workflows.js';
import { InvalidError } from '../../shared/errors/domain-errors.js';
import { shellQuoteFilter } from '../../shared/render/filters.js';
import { parseDuration } from '../../shared/util/duration.js';

/** How a step is carried out once its payload is rendered. */
export type StepPlan =
  | { via: 'task'; kind: string; payload: Record<string, unknown> }
  | { via: 'deploy'; request: { image: string; config: 'cloud-init' | 'ignition'; disk?: string; bootenv?: string } }
  | { via: 'release'; request: { wipe: 'quick' | 'secure' } }
  | { via: 'register-service'; service: string; port: number; ttl: string; tags: string[]; member: string; script: string };

/** Built-in actions that are one signed task of the same kind. */
const TASK_ACTIONS = new Set(['power', 'boot-device', 'set-bootenv', 'reboot', 'cert-request']);

function parseWith<K extends keyof typeof ActionWith>(action: K, rendered: Record<string, unknown>): z.infer<(typeof ActionWith)[K]> {
  const r = ActionWith[action].safeParse(rendered);
  if (!r.success) {
    const details = r.error.issues.map((i) => ({ path: ['with', ...i.path].join('.'), message: i.message }));
    throw new InvalidError(`${action}: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
  }
  return r.data as z.infer<(typeof ActionWith)[K]>;
}

/**
 * The machine's heartbeat for a member it registered: a loop in the background of the machine's runner
 * (so the task finishes) that runs the check and reports pass or fail to its agent with this boot's
 * session, every third of the TTL. Touching /run/underlay-heartbeat-SERVICE.stop ends it.
 */
export function heartbeatScript(service: string, member: string, check: string, ttl: string): string {
  const every = Math.max(1, Math.floor(parseDuration(ttl) / 3000));
  const q = shellQuoteFilter;
  return [
    '#!/bin/sh',
    `# underlay register-service: heartbeat of ${service}/${member} every ${every}s`,
    `svc=${q(service)}; member=${q(member)}; check=${q(check)}`,
    `stop="\${UL_RUN_DIR:-/run}/underlay-heartbeat-$svc.stop"; rm -f "$stop"`,
    'hdr="$PWD/heartbeat.auth"; (umask 077; printf "Authorization: Bearer %s\\n" "$UL_SESSION" >"$hdr")',
    '(',
    '  while [ ! -e "$stop" ]; do',
    '    if sh -c "$check" >/dev/null 2>&1; then st=pass; else st=fail; fi',
    '    curl -sS -m 10 -X PUT -H "@$hdr" "$UL_URL/api/v1/services/$svc/members/$member/$st" >/dev/null 2>&1',
    `    sleep ${every}`,
    '  done',
    ') </dev/null >/dev/null 2>&1 &',
    'echo "heartbeat of $svc/$member started"',
    '',
  ].join('\n');
}

/** Turns a step and its rendered payload (or `with`) into what the engine carries out. */
export function planStep(step: Step, rendered: Record<string, unknown>, machineName: string): StepPlan {
  if ('task' in step) {
    const payload = { ...rendered };
    if (step.task === 'run-script' && typeof payload.script === 'string') {
      payload.scriptB64 = Buffer.from(payload.script).toString('base64');
      delete payload.script;
    }
    return { via: 'task', kind: step.task, payload };
  }
  switch (step.action) {
    case 'deploy':
      return { via: 'deploy', request: parseWith('deploy', rendered) };
    case 'release':
      return { via: 'release', request: parseWith('release', rendered) };
    case 'register-service': {
      const w = parseWith('register-service', rendered);
      const member = `${machineName}-${w.port}`;
      return { via: 'register-service', service: w.service, port: w.port, ttl: w.ttl, tags: w.tags, member, script: heartbeatScript(w.service, member, w.check, w.ttl) };
    }
    default:
      if (!TASK_ACTIONS.has(step.action)) throw new InvalidError(`unknown action ${step.action}`);
      return { via: 'task', kind: step.action, payload: parseWith(step.action, rendered) as Record<string, unknown> };
  }
}
