import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseWorkflowFile } from '../api/workflow-file.js';
import type { ApiClient } from '../client/api-client.js';
import { action, globals } from './context.js';
import { EXIT } from './exit-codes.js';
import { print, printPage } from './output.js';

const enc = encodeURIComponent;
const WORKFLOW_COLUMNS = ['name', 'description', 'stages', 'updatedAt'];
const RUN_COLUMNS = ['id', 'workflow', 'machineName', 'status', 'stage', 'updatedAt'];

interface RunLike {
  id: string;
  workflow: string;
  machineName: string;
  updatedAt: string;
  stage: number;
  status: { state: string; for?: string; reason?: string };
  stages: { name: string; gate: { state: string; waitingFor?: string; since?: string }; steps: { name: string; state: string; taskId?: string; attempts: number; reason?: string }[] }[];
}

function readWorkflow(file: string) {
  return parseWorkflowFile(readFileSync(file === '-' ? 0 : file, 'utf8'));
}

/** One line per run for tables: the status says what a waiting run waits for. */
function runRow(r: RunLike) {
  const status = r.status.state === 'waiting' ? `waiting: ${r.status.for}` : r.status.state === 'failed' ? `failed: ${r.status.reason}` : r.status.state;
  return { ...r, status, stage: r.stages[r.stage]?.name ?? '-' };
}

/** A run as lines: each stage's gate and each step's state and task. */
export function formatRun(r: RunLike): string {
  const out = [`run ${r.id}: ${r.workflow} on ${r.machineName}: ${runRow(r).status}`];
  r.stages.forEach((s, i) => {
    const gate = s.gate.state === 'waiting' ? ` (waiting for ${s.gate.waitingFor} since ${s.gate.since})` : s.gate.state === 'none' ? '' : ` (gate ${s.gate.state})`;
    out.push(`${i === r.stage ? '>' : ' '} stage ${s.name}${gate}`);
    for (const st of s.steps) out.push(`    ${st.name}: ${st.state}${st.attempts > 1 ? ` (attempt ${st.attempts})` : ''}${st.taskId ? ` task ${st.taskId}` : ''}${st.reason ? `: ${st.reason}` : ''}`);
  });
  return out.join('\n');
}

async function watchRun(client: ApiClient, id: string, onChange: (r: RunLike) => void): Promise<RunLike> {
  let run = await client.call<RunLike>('GET', `/api/v1/runs/${enc(id)}`);
  onChange(run);
  while (!['succeeded', 'failed', 'cancelled'].includes(run.status.state)) {
    const next = await client.call<RunLike>('GET', `/api/v1/runs/${enc(id)}?since=${enc(run.updatedAt)}&wait=60s`);
    if (next.updatedAt !== run.updatedAt) onChange(next);
    run = next;
  }
  return run;
}

/** `underlay workflows …`, `underlay runs …` (issue 14). */
export function registerWorkflowCommands(program: Command): void {
  const wf = program.command('workflows').description('manage workflows (stages of steps with gates; docs/workflows.md)');
  wf.command('list')
    .description('list workflows')
    .action(
      action(async (_o: unknown, c: Command) => {
        const g = globals(c);
        const page = await g.client().call<{ items: { stages: unknown[] }[] }>('GET', '/api/v1/workflows?limit=1000');
        printPage(page, g.format, WORKFLOW_COLUMNS, (w) => ({ ...w, stages: w.stages.length }));
      }),
    );
  wf.command('show <ref>')
    .description('show one workflow')
    .action(
      action(async (ref: string, _o: unknown, c: Command) => {
        const g = globals(c);
        print(await g.client().call('GET', `/api/v1/workflows/${enc(ref)}`), g.format === 'table' ? 'yaml' : g.format);
      }),
    );
  wf.command('create')
    .description('create a workflow from a YAML or JSON file ("-" reads stdin)')
    .requiredOption('-f, --file <file>', 'the workflow file')
    .action(
      action(async (o: { file: string }, c: Command) => {
        const g = globals(c);
        print(await g.client().call('POST', '/api/v1/workflows', readWorkflow(o.file)), g.format === 'table' ? 'yaml' : g.format);
      }),
    );
  wf.command('update <ref>')
    .description('replace a workflow’s description and stages from a file (running runs keep the stages they started with)')
    .requiredOption('-f, --file <file>', 'the workflow file')
    .action(
      action(async (ref: string, o: { file: string }, c: Command) => {
        const g = globals(c);
        const w = readWorkflow(o.file);
        print(await g.client().call('PATCH', `/api/v1/workflows/${enc(ref)}`, { description: w.description ?? null, stages: w.stages }), g.format === 'table' ? 'yaml' : g.format);
      }),
    );
  wf.command('delete <ref>')
    .description('delete a workflow (its runs keep going)')
    .action(
      action(async (ref: string, _o: unknown, c: Command) => {
        await globals(c).client().call('DELETE', `/api/v1/workflows/${enc(ref)}`);
        process.stdout.write(`deleted workflow ${ref}\n`);
      }),
    );

  const runs = program.command('runs').description('workflow runs: list, show, watch, continue, cancel, retry');
  runs.command('list')
    .description('list runs, newest first')
    .option('--workflow <name>', 'only this workflow')
    .option('--machine <name>', 'only this machine')
    .option('--state <state>', 'running|waiting|succeeded|failed|cancelled')
    .option('--limit <n>', 'page size', '100')
    .action(
      action(async (o: { workflow?: string; machine?: string; state?: string; limit: string }, c: Command) => {
        const g = globals(c);
        const q = new URLSearchParams({ limit: o.limit, ...(o.workflow ? { workflow: o.workflow } : {}), ...(o.machine ? { machine: o.machine } : {}), ...(o.state ? { state: o.state } : {}) });
        const page = await g.client().call<{ items: RunLike[] }>('GET', `/api/v1/runs?${q}`);
        printPage(page, g.format, RUN_COLUMNS, runRow);
      }),
    );
  runs.command('show <id>')
    .description('a run’s stages, gates and steps (task ids, outputs, timings with -o json)')
    .action(
      action(async (id: string, _o: unknown, c: Command) => {
        const g = globals(c);
        const r = await g.client().call<RunLike>('GET', `/api/v1/runs/${enc(id)}`);
        if (g.format === 'table') process.stdout.write(formatRun(r) + '\n');
        else print(r, g.format);
      }),
    );
  runs.command('watch <id>')
    .description('follow a run until it ends (exit 0 succeeded, 5 failed or cancelled)')
    .action(
      action(async (id: string, _o: unknown, c: Command) => {
        const g = globals(c);
        const r = await watchRun(g.client(), id, (x) => process.stderr.write(formatRun(x) + '\n'));
        if (g.format !== 'table') print(r, g.format);
        process.exitCode = r.status.state === 'succeeded' ? EXIT.OK : EXIT.CONFLICT;
      }),
    );
  for (const [verb, what] of [
    ['continue', 'approve the gate the run waits at'],
    ['cancel', 'cancel the run'],
    ['retry', 'retry a failed run from its failed step'],
  ] as const) {
    runs.command(`${verb} <id>`)
      .description(what)
      .action(
        action(async (id: string, _o: unknown, c: Command) => {
          const g = globals(c);
          const r = await g.client().call<RunLike>('POST', `/api/v1/runs/${enc(id)}/${verb}`);
          if (g.format === 'table') process.stdout.write(formatRun(r) + '\n');
          else print(r, g.format);
        }),
      );
  }
}

/** `underlay machines workflow [NAME] --workflow W [--selector k=v,…]`. */
export function registerMachineWorkflowCommand(machines: Command): void {
  machines
    .command('workflow [ref]')
    .description('start a workflow on a machine, or with --selector on every matching machine (one run each)')
    .requiredOption('--workflow <name>', 'the workflow')
    .option('--selector <k=v,…>', 'machines matching every pair (site, rack, state, profile, bootenv, name)')
    .action(
      action(async (ref: string | undefined, o: { workflow: string; selector?: string }, c: Command) => {
        const g = globals(c);
        if (!!ref === !!o.selector) throw new Error('name one machine or give --selector (one of them)');
        const res = ref
          ? { items: [await g.client().call<RunLike>('POST', `/api/v1/machines/${enc(ref)}/workflow`, { workflow: o.workflow })] }
          : await g.client().call<{ items: RunLike[] }>('POST', '/api/v1/runs', { workflow: o.workflow, selector: o.selector });
        print(g.format === 'table' ? res.items.map(runRow) : res, g.format, RUN_COLUMNS);
      }),
    );
}
