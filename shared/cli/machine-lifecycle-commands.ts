import type { Command } from 'commander';
import type { MachineEvent, MachineState } from '../api/lifecycle.js';
import { MACHINE_STATES, WAIT_FAILED_CODE } from '../api/lifecycle.js';
import { ApiClientError, type ApiClient } from '../client/api-client.js';
import { parseDuration } from '../util/duration.js';
import { action, collect, globals, parseKeyValue } from './context.js';
import { EXIT } from './exit-codes.js';
import { print } from './output.js';

/** Exit code of `machines wait` when the timeout passes first (as `services wait`). */
export const MACHINE_WAIT_TIMEOUT_EXIT = EXIT.TIMEOUT;
/** Exit code of `machines wait` when the machine lands in `failed` (as for other 409s). */
export const MACHINE_WAIT_FAILED_EXIT = EXIT.CONFLICT;
/** How long one wait request blocks before the CLI looks at the task's progress again. */
const POLL_MS = 5_000;

const enc = encodeURIComponent;

interface MachineView {
  id: string;
  name: string;
  state: MachineState;
  stateReason?: string;
  deployment?: { taskId?: string };
}
interface ActionResult {
  machine: MachineView;
  task?: { id: string; kind: string; state: string };
}
type ErrorBody = { error?: { code?: string; message?: string; details?: { state?: string; reason?: string | null } } };

function printAction(r: ActionResult, format: ReturnType<typeof globals>['format']): void {
  if (format !== 'table') return print(r, format);
  process.stdout.write(`machine ${r.machine.name}: ${r.machine.state}${r.task ? ` (task ${r.task.id}, ${r.task.kind})` : ''}\n`);
}

/** One line of a task's progress, whatever the runner reports (bytes, total, rate, a message); undefined when it has none. */
export function progressLine(task: { state?: string; progress?: unknown }): string | undefined {
  const p = task.progress as { bytes?: number; total?: number; rate?: number; bytesPerSecond?: number; phase?: string; message?: string } | undefined;
  if (!p || typeof p !== 'object') return undefined;
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  const parts: string[] = [];
  if (typeof p.phase === 'string') parts.push(p.phase);
  if (typeof p.bytes === 'number') parts.push(typeof p.total === 'number' && p.total > 0 ? `${mib(p.bytes)} of ${mib(p.total)} (${Math.floor((100 * p.bytes) / p.total)}%)` : mib(p.bytes));
  const rate = p.rate ?? p.bytesPerSecond;
  if (typeof rate === 'number') parts.push(`${mib(rate)}/s`);
  if (typeof p.message === 'string') parts.push(p.message);
  return parts.length > 0 ? parts.join(', ') : undefined;
}

/**
 * Waits for the machine to reach `state`, printing each state change and the running task's progress
 * (to stderr, so stdout carries only the final machine with -o json). Resolves with the exit code.
 */
export async function waitForMachine(client: ApiClient, ref: string, state: string, timeout: string, out: (line: string) => void): Promise<{ code: number; machine?: MachineView }> {
  const deadline = Date.now() + parseDuration(timeout);
  let lastState = '';
  let lastProgress = '';
  for (;;) {
    const chunk = Math.max(0, Math.min(deadline - Date.now(), POLL_MS));
    const res = await client.raw<MachineView | ErrorBody>('GET', `/api/v1/machines/${enc(ref)}/wait?state=${enc(state)}&timeout=${chunk}ms`);
    if (res.status === 200) {
      const m = res.body as MachineView;
      if (m.state !== lastState) out(`${m.name}: ${m.state}`);
      return { code: 0, machine: m };
    }
    const e = (res.body as ErrorBody).error;
    if (res.status === 409 && e?.code === WAIT_FAILED_CODE) {
      out(`failed: ${e.details?.reason ?? e.message ?? 'no reason recorded'}`);
      return { code: MACHINE_WAIT_FAILED_EXIT };
    }
    if (res.status !== 408) throw new ApiClientError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? `HTTP ${res.status}`);
    const current = e?.details?.state ?? '';
    if (current !== lastState) {
      out(`${ref}: ${current}${e?.details?.reason ? ` (${e.details.reason})` : ''}`);
      lastState = current;
    }
    const m = await client.call<MachineView>('GET', `/api/v1/machines/${enc(ref)}`);
    if (m.deployment?.taskId) {
      const task = await client.raw<{ state?: string; progress?: unknown }>('GET', `/api/v1/tasks/${enc(m.deployment.taskId)}`);
      const line = task.status === 200 ? progressLine(task.body) : undefined;
      if (line && line !== lastProgress) out(`  ${line}`);
      if (line) lastProgress = line;
    }
    if (Date.now() >= deadline) {
      out(`timed out: ${ref} is ${current || 'unknown'}, not ${state}, after ${timeout}`);
      return { code: MACHINE_WAIT_TIMEOUT_EXIT };
    }
  }
}

/** `underlay machines deploy|release|rescue|wait|events` (issue 12). */
export function registerMachineLifecycleCommands(machines: Command): void {
  machines
    .command('deploy <ref>')
    .description('write an image to the machine’s disk (ready or failed → deploying); follow it with "machines wait NAME --state deployed"')
    .requiredOption('--image <name>', 'image name (underlay images push FILE --name NAME)')
    .option('--disk <device>', 'target disk, e.g. /dev/vda (default: the first non-removable disk)')
    .option('--param <key=value>', 'a param for the deployed OS’s configs (repeatable; merged into the machine’s params)', collect)
    .option('--config <kind>', 'first-boot configuration: cloud-init or ignition', 'cloud-init')
    .option('--bootenv <name>', 'boot environment the configs render from (default for cloud-init: debian-cloud)')
    .action(
      action(async (ref: string, o: { image: string; disk?: string; param?: string[]; config: string; bootenv?: string }, c: Command) => {
        const g = globals(c);
        const params = o.param ? Object.fromEntries(o.param.map(parseKeyValue)) : undefined;
        const body = { image: o.image, config: o.config, ...(o.disk ? { disk: o.disk } : {}), ...(params ? { params } : {}), ...(o.bootenv ? { bootenv: o.bootenv } : {}) };
        printAction(await g.client().call<ActionResult>('POST', `/api/v1/machines/${enc(ref)}/deploy`, body), g.format);
      }),
    );
  machines
    .command('release <ref>')
    .description('wipe the machine’s disks and netboot it back into discovery (→ releasing → ready)')
    .option('--wipe <mode>', 'quick (partition tables and signatures) or secure (every block)', 'quick')
    .option('--power-off', 'power the machine off through its BMC once it is back in ready')
    .action(
      action(async (ref: string, o: { wipe: string; powerOff?: boolean }, c: Command) => {
        const g = globals(c);
        printAction(await g.client().call<ActionResult>('POST', `/api/v1/machines/${enc(ref)}/release`, { wipe: o.wipe, ...(o.powerOff ? { powerOff: true } : {}) }), g.format);
      }),
    );
  machines
    .command('rescue <ref>')
    .description('boot the runner environment without touching the disks')
    .action(
      action(async (ref: string, _o: unknown, c: Command) => {
        const g = globals(c);
        printAction(await g.client().call<ActionResult>('POST', `/api/v1/machines/${enc(ref)}/rescue`), g.format);
      }),
    );
  machines
    .command('wait <ref>')
    .description(`wait until the machine is in a state, printing state changes and task progress; exit 0, ${MACHINE_WAIT_FAILED_EXIT} if it failed, ${MACHINE_WAIT_TIMEOUT_EXIT} at the timeout`)
    .requiredOption('--state <state>', MACHINE_STATES.join('|'))
    .option('--timeout <duration>', 'give up after this long', '20m')
    .action(
      action(async (ref: string, o: { state: string; timeout: string }, c: Command) => {
        const g = globals(c);
        if (!(MACHINE_STATES as readonly string[]).includes(o.state)) throw new Error(`--state must be one of ${MACHINE_STATES.join(', ')} (got "${o.state}")`);
        const r = await waitForMachine(g.client(), ref, o.state, o.timeout, (line) => process.stderr.write(line + '\n'));
        if (r.machine && g.format !== 'table') print(r.machine, g.format);
        process.exitCode = r.code;
      }),
    );
  machines
    .command('events <ref>')
    .description('the machine’s lifecycle events, oldest first: from, to, cause, reason')
    .option('--limit <n>', 'at most this many', '200')
    .action(
      action(async (ref: string, o: { limit: string }, c: Command) => {
        const g = globals(c);
        const page = await g.client().call<{ items: MachineEvent[] }>('GET', `/api/v1/machines/${enc(ref)}/events?limit=${enc(o.limit)}`);
        if (g.format !== 'table') return print(page, g.format);
        const rows = page.items.map((e) => ({ at: e.at, from: e.from ?? '-', to: e.to, cause: causeText(e.cause), reason: e.reason ?? '' }));
        print(rows, 'table', ['at', 'from', 'to', 'cause', 'reason']);
      }),
    );
}

function causeText(c: MachineEvent['cause']): string {
  switch (c.kind) {
    case 'action':
      return `${c.action}${c.tokenId ? ` by token ${c.tokenId}` : ''}${c.taskId ? ` (task ${c.taskId})` : ''}`;
    case 'agent-event':
      return `${c.event} from agent ${c.agent}`;
    case 'task':
      return `task ${c.taskId} (${c.taskKind}) ${c.taskState}`;
    default:
      return c.kind;
  }
}
