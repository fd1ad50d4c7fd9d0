import type { Command } from 'commander';
import { POWER_ACTIONS } from '../api/bmc.js';
import type { ApiClient } from '../client/api-client.js';
import { parseDuration } from '../util/duration.js';
import { action, globals } from './context.js';
import { EXIT } from './exit-codes.js';
import { print } from './output.js';

const enc = encodeURIComponent;
const FINAL = new Set(['succeeded', 'failed', 'rejected', 'cancelled', 'expired']);
/** Exit code when the BMC operation failed (the task's reason and output are printed). */
export const POWER_FAILED_EXIT = EXIT.CONFLICT;
/** Exit code when the task did not finish within --timeout. */
export const POWER_TIMEOUT_EXIT = EXIT.TIMEOUT;

interface TaskView {
  id: string;
  kind: string;
  state: string;
  reason?: string;
  output?: string;
}

/** Follows a task until it is final or the timeout passes. */
async function follow(client: ApiClient, id: string, timeout: string): Promise<TaskView | undefined> {
  const deadline = Date.now() + parseDuration(timeout);
  for (;;) {
    const t = await client.call<TaskView>('GET', `/api/v1/tasks/${enc(id)}`);
    if (FINAL.has(t.state)) return t;
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function run(cmd: Command, path: string, body: unknown, o: { wait: boolean; timeout: string }): Promise<void> {
  const g = globals(cmd);
  const client = g.client();
  const r = await client.call<{ machine: string; task: TaskView }>('POST', path, body);
  if (!o.wait) return print(r, g.format);
  const t = await follow(client, r.task.id, o.timeout);
  if (!t) {
    process.stderr.write(`timed out: task ${r.task.id} is not finished after ${o.timeout}\n`);
    process.exitCode = POWER_TIMEOUT_EXIT;
    return;
  }
  if (g.format !== 'table') print(t, g.format);
  else process.stdout.write(`${r.machine}: ${t.output ?? t.state}\n`);
  if (t.state !== 'succeeded') {
    process.stderr.write(`error: ${t.kind} ${t.state}${t.reason ? ` (${t.reason})` : ''}${t.output && g.format !== 'table' ? `: ${t.output}` : ''}\n`);
    process.exitCode = POWER_FAILED_EXIT;
  }
}

/** `underlay machines power NAME on|off|cycle|reset|status` and `machines boot-device NAME pxe|disk` (issue 13). */
export function registerMachinePowerCommands(machines: Command): void {
  machines
    .command('power <ref> <action>')
    .description(`power through the machine's BMC (${POWER_ACTIONS.join('|')}); waits for its agent's answer`)
    .option('--no-wait', 'print the queued task and return')
    .option('--timeout <duration>', 'how long to wait for the agent', '2m')
    .action(
      action(async (ref: string, act: string, o: { wait: boolean; timeout: string }, c: Command) => {
        if (!(POWER_ACTIONS as readonly string[]).includes(act)) throw new Error(`action must be one of ${POWER_ACTIONS.join(', ')} (got "${act}")`);
        await run(c, `/api/v1/machines/${enc(ref)}/power`, { action: act }, o);
      }),
    );
  machines
    .command('boot-device <ref> <device>')
    .description("the next boot device through the machine's BMC: pxe or disk, for the next boot only (--once, the default) or --persistent")
    .option('--once', 'the next boot only (default)')
    .option('--persistent', 'every boot until changed')
    .option('--no-wait', 'print the queued task and return')
    .option('--timeout <duration>', 'how long to wait for the agent', '2m')
    .action(
      action(async (ref: string, device: string, o: { once?: boolean; persistent?: boolean; wait: boolean; timeout: string }, c: Command) => {
        if (device !== 'pxe' && device !== 'disk') throw new Error(`device must be pxe or disk (got "${device}")`);
        if (o.once && o.persistent) throw new Error('--once and --persistent exclude each other');
        await run(c, `/api/v1/machines/${enc(ref)}/boot-device`, { device, persistent: !!o.persistent }, o);
      }),
    );
}
