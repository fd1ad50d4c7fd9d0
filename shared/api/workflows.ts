import { z } from 'zod';
import { MachineState } from './lifecycle.js';
import { Name, ParamValue, Timestamps } from './common.js';
import { parseSelector } from './selector.js';
import { CertRequestPayload } from '../protocol/task-kinds.js';

import { Duration } from './duration.js';
export { Duration };

/** Payload templates: JSON whose strings are LiquidJS templates, rendered per machine (central/runs/render.ts). */
const PayloadTemplate = z.record(z.string().max(128), ParamValue);

/**
 * What to do when a step fails after its retries: `stop` the run (default), `continue` with the next
 * step, or `goto STAGE` (start that stage again; a burn-in loop).
 */
export const OnFailure = z.union([z.literal('stop'), z.literal('continue'), z.string().regex(/^goto [A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'stop, continue or "goto STAGE"')]);
export type OnFailure = z.infer<typeof OnFailure>;

const StepCommon = {
  name: Name.optional().describe('the step’s name in runs (default: its kind and position)'),
  timeout: Duration.default('1h').describe('how long one attempt may take (also the TTL of its signed task)'),
  retries: z.number().int().min(0).max(10).default(0).describe('attempts after the first failure'),
  onFailure: OnFailure.default('stop'),
};

/** Built-in actions and what they take. */
export const BUILTIN_ACTIONS = ['deploy', 'release', 'power', 'boot-device', 'set-bootenv', 'reboot', 'register-service', 'cert-request'] as const;
export type BuiltinAction = (typeof BUILTIN_ACTIONS)[number];

export const RegisterServiceWith = z
  .object({
    service: Name,
    port: z.number().int().min(1).max(65535),
    /** A shell command run on the machine; exit 0 = passing. Default `true` (alive while the machine runs its heartbeat). */
    check: z.string().max(4096).default('true'),
    /** Heartbeat TTL: the member turns critical when no heartbeat came for this long. */
    ttl: Duration.default('30s'),
    tags: z.array(z.string().max(64)).max(32).default([]),
  })
  .strict();

export const ActionWith = {
  deploy: z.object({ image: z.string().min(1).max(128), config: z.enum(['cloud-init', 'ignition']).default('cloud-init'), disk: z.string().max(128).optional(), bootenv: Name.optional() }).strict(),
  release: z.object({ wipe: z.enum(['quick', 'secure']).default('quick') }).strict(),
  power: z.object({ action: z.enum(['on', 'off', 'cycle', 'reset', 'status']) }).strict(),
  'boot-device': z.object({ device: z.enum(['pxe', 'disk']), persistent: z.boolean().default(false) }).strict(),
  'set-bootenv': z.object({ bootenv: z.string().min(1).max(63) }).strict(),
  reboot: z.object({}).strict(),
  'register-service': RegisterServiceWith,
  /** A certificate from a service CA (docs/pki.md): the runner makes the key and CSR, the step is done when it is issued. */
  'cert-request': CertRequestPayload,
} as const satisfies Record<BuiltinAction, z.ZodType>;

export const TaskStep = z
  .object({
    task: z.string().min(1).max(63).describe('a signed task kind (GET /api/v1/tasks kinds: run-script, set-netboot …)'),
    payload: PayloadTemplate.default({}).describe('the task payload; every string is a template rendered per machine. run-script also takes `script` (plain text, base64-encoded for you)'),
    ...StepCommon,
  })
  .strict();

export const ActionStep = z
  .object({
    action: z.enum(BUILTIN_ACTIONS),
    with: PayloadTemplate.default({}).describe('the action’s arguments; every string is a template rendered per machine'),
    ...StepCommon,
  })
  .strict();

export const Step = z.union([TaskStep, ActionStep]);
export type Step = z.infer<typeof Step>;

/** Gates: what a stage waits for before its steps start. */
export const ServiceGate = z.object({ service: Name, passing: z.number().int().min(1).max(10_000) }).strict();
export const ParamGate = z.object({ param: z.string().regex(/^[a-z][a-z0-9_]*$/).max(128) }).strict();
export const MachinesGate = z
  .object({
    machines: z
      .string()
      .min(1)
      .max(512)
      .refine((s) => {
        try {
          parseSelector(s);
          return true;
        } catch {
          return false;
        }
      }, 'a selector like rack=r1,site=dc1 (keys: site, rack, state, profile, bootenv, name)')
      .describe('a selector like rack=r1,site=dc1'),
    state: MachineState,
  })
  .strict();
export const Wait = z.union([ServiceGate, ParamGate, MachinesGate]);
export type Wait = z.infer<typeof Wait>;

export const Stage = z
  .object({
    name: Name,
    wait: Wait.optional().describe('a gate: the stage starts once it holds (re-evaluated on every change of what it watches)'),
    approval: z.boolean().default(false).describe('the stage starts only after `underlay runs continue ID`'),
    steps: z.array(Step).max(64).default([]),
  })
  .strict();
export type Stage = z.infer<typeof Stage>;

const WorkflowFields = {
  name: Name,
  description: z.string().max(1024).optional(),
  stages: z.array(Stage).min(1).max(64),
};

/** Goto targets name a stage of the workflow; stage names are unique. */
function checkStages(w: { stages?: Stage[] }, ctx: z.RefinementCtx): void {
  if (!w.stages) return;
  const names = new Set<string>();
  w.stages.forEach((s, i) => {
    if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: ['stages', i, 'name'], message: `stage "${s.name}" is named twice` });
    names.add(s.name);
  });
  w.stages.forEach((s, i) =>
    s.steps.forEach((st, j) => {
      const target = st.onFailure.startsWith('goto ') ? st.onFailure.slice(5) : undefined;
      if (target && !names.has(target)) ctx.addIssue({ code: 'custom', path: ['stages', i, 'steps', j, 'onFailure'], message: `no stage named "${target}"` });
    }),
  );
}

export const WorkflowCreate = z.object(WorkflowFields).strict().superRefine(checkStages).meta({ id: 'WorkflowCreate' });
export type WorkflowCreate = z.infer<typeof WorkflowCreate>;
export const WorkflowPatch = z
  .object({ description: z.string().max(1024).nullable().optional(), stages: WorkflowFields.stages.optional() })
  .strict()
  .superRefine(checkStages)
  .meta({ id: 'WorkflowPatch' });
export const Workflow = z
  .object({ id: z.string(), ...WorkflowFields, ...Timestamps })
  .meta({ id: 'Workflow' });
export type Workflow = z.infer<typeof Workflow>;

// ---- runs

export const StartRuns = z
  .object({
    workflow: Name,
    machines: z.array(z.string().min(1).max(128)).max(10_000).optional().describe('machine names or ids'),
    selector: z.string().min(1).max(512).optional().describe('or every machine matching key=value,… (keys: site, rack, state, profile, bootenv, name)'),
  })
  .strict()
  .refine((b) => !!b.machines?.length !== !!b.selector, 'give machines or a selector (one of them)')
  .meta({ id: 'StartRuns' });
export type StartRuns = z.infer<typeof StartRuns>;

/** Runs as the API shows them (central/runs/state-machine.ts has the exact unions). */
export const RunView = z
  .object({
    id: z.string(),
    workflow: z.string(),
    machine: z.string(),
    machineName: z.string(),
    site: z.string(),
    status: z.object({ state: z.enum(['running', 'waiting', 'succeeded', 'failed', 'cancelled']) }).loose(),
    stage: z.number().int(),
    stages: z.array(z.object({ name: z.string(), gate: z.unknown(), steps: z.array(z.unknown()) }).loose()),
    ...Timestamps,
  })
  .loose()
  .meta({ id: 'Run' });
