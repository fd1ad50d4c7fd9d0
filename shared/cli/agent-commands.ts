import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { action, globals } from './context.js';
import { print, printPage } from './output.js';

/** `underlay agents list|show|revoke` and `underlay tasks list|show|create|cancel` (API clients). */
export function registerAgentAdminCommands(program: Command): void {
  const agents = program.command('agents').description('joined site agents');
  agents
    .command('list')
    .option('--site <site>')
    .action(
      action(async (o: { site?: string }, c: Command) => {
        const g = globals(c);
        const page = await g.client().call<{ items: unknown[] }>('GET', `/api/v1/agents${o.site ? `?site=${encodeURIComponent(o.site)}` : ''}`);
        printPage(page, g.format, ['id', 'site', 'name', 'agentVersion', 'connected', 'lastSeenAt', 'certExpiresAt', 'revokedAt']);
      }),
    );
  agents.command('show <ref>').action(
    action(async (ref: string, _o: unknown, c: Command) => {
      const g = globals(c);
      print(await g.client().call('GET', `/api/v1/agents/${encodeURIComponent(ref)}`), g.format);
    }),
  );
  agents
    .command('revoke <ref>')
    .description('revoke an agent: its link closes and its certificate is refused from then on')
    .action(
      action(async (ref: string, _o: unknown, c: Command) => {
        const g = globals(c);
        print(await g.client().call('POST', `/api/v1/agents/${encodeURIComponent(ref)}/revoke`), g.format);
      }),
    );

  const tasks = program.command('tasks').description('signed tasks for site agents and machines');
  tasks
    .command('list')
    .option('--site <site>')
    .option('--machine <id>')
    .option('--state <state>')
    .option('--kind <kind>')
    .option('--limit <n>', 'page size', '100')
    .action(
      action(async (o: Record<string, string | undefined>, c: Command) => {
        const g = globals(c);
        const q = new URLSearchParams(Object.entries(o).filter(([, v]) => v) as [string, string][]);
        const page = await g.client().call<{ items: unknown[] }>('GET', `/api/v1/tasks?${q}`);
        printPage(page, g.format, ['id', 'site', 'machine', 'kind', 'seq', 'state', 'createdAt', 'exitCode']);
      }),
    );
  tasks.command('show <id>').action(
    action(async (id: string, _o: unknown, c: Command) => {
      const g = globals(c);
      print(await g.client().call('GET', `/api/v1/tasks/${encodeURIComponent(id)}`), g.format);
    }),
  );
  tasks
    .command('create')
    .description('create a task: ping, sync-state, set-netboot, set-bootenv, run-script, reboot, poweroff')
    .requiredOption('--site <site>', 'the site whose agent runs it')
    .requiredOption('--kind <kind>', 'task kind')
    .option('--machine <machine>', 'machine name or id (machine kinds)')
    .option('--payload <json>', 'payload as JSON')
    .option('--script-file <file>', 'run-script: the POSIX sh script to run on the machine')
    .option('--netboot <bool>', 'set-netboot: true|false')
    .option('--bootenv <name>', 'set-bootenv: the boot environment')
    .option('--ttl <duration>', 'expiry, e.g. 10m (default 1h)')
    .action(
      action(async (o: { site: string; kind: string; machine?: string; payload?: string; scriptFile?: string; netboot?: string; bootenv?: string; ttl?: string }, c: Command) => {
        const g = globals(c);
        let payload: Record<string, unknown> = {};
        if (o.payload) {
          try {
            payload = JSON.parse(o.payload) as Record<string, unknown>;
          } catch {
            throw new Error('--payload must be JSON');
          }
        }
        if (o.scriptFile) payload.scriptB64 = readFileSync(o.scriptFile).toString('base64');
        if (o.netboot !== undefined) payload.netboot = o.netboot === 'true';
        if (o.bootenv) payload.bootenv = o.bootenv;
        const body = { site: o.site, kind: o.kind, payload, ...(o.machine ? { machine: o.machine } : {}), ...(o.ttl ? { ttl: o.ttl } : {}) };
        print(await g.client().call('POST', '/api/v1/tasks', body), g.format);
      }),
    );
  tasks.command('cancel <id>').action(
    action(async (id: string, _o: unknown, c: Command) => {
      const g = globals(c);
      print(await g.client().call('POST', `/api/v1/tasks/${encodeURIComponent(id)}/cancel`), g.format);
    }),
  );
}
