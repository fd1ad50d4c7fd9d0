import type { Command } from 'commander';
import { action, globals } from './context.js';
import { registerObjectCommands, type FieldFlag } from './objects.js';
import { print, printPage } from './output.js';
import { registerMachineLifecycleCommands } from './machine-lifecycle-commands.js';
import { registerMachineWorkflowCommand } from './workflows-commands.js';
import { registerMachinePowerCommands } from './machine-power-commands.js';
import { BMC_FIELD_FLAGS, bmcBody } from './machine-bmc-options.js';


const described: FieldFlag[] = [
  { flags: '--description <text>', description: 'free text', field: 'description' },
  { flags: '--param <key=value>', description: 'a param value (repeatable; value parsed as JSON if it is JSON)', field: 'params', kind: 'params' },
];

export function registerResourceCommands(program: Command): void {
  registerObjectCommands(program, { noun: 'sites', singular: 'site', columns: ['name', 'description', 'updatedAt'], fields: described });
  registerObjectCommands(program, { noun: 'profiles', singular: 'profile', columns: ['name', 'description', 'params'], fields: described });
  registerObjectCommands(program, {
    noun: 'params',
    singular: 'param definition',
    columns: ['name', 'secret', 'schema', 'default'],
    fields: [
      { flags: '--description <text>', description: 'free text', field: 'description' },
      { flags: '--schema <json>', description: 'JSON schema of the value, e.g. \'{"type":"string"}\'', field: 'schema', kind: 'json' },
      { flags: '--default <json>', description: 'default value (JSON)', field: 'default', kind: 'json' },
      { flags: '--secret', description: 'the value is secret: sealed to agents, never shown in clear', field: 'secret', kind: 'bool' },
    ],
  });
  const machines = registerObjectCommands(program, {
    noun: 'machines',
    singular: 'machine',
    columns: ['name', 'site', 'macs', 'address', 'bootenv', 'state', 'netboot', 'power'],
    fields: [
      { flags: '--site <site>', description: 'site name', field: 'site' },
      { flags: '--rack <rack>', description: 'rack name', field: 'rack' },
      { flags: '--mac <mac>', description: 'a MAC address (repeatable)', field: 'macs', kind: 'list', item: 'mac' },
      { flags: '--uuid <uuid>', description: 'system UUID', field: 'uuid' },
      { flags: '--serial <serial>', description: 'serial number', field: 'serial' },
      { flags: '--address <ip>', description: 'IPv4 address', field: 'address' },
      { flags: '--profile <profile>', description: 'a profile (repeatable, in order)', field: 'profiles', kind: 'list' },
      { flags: '--param <key=value>', description: 'a param value (repeatable)', field: 'params', kind: 'params' },
      { flags: '--bootenv <name>', description: 'boot environment', field: 'bootenv' },
      { flags: '--netboot', description: 'allow netboot', field: 'netboot', kind: 'negbool' },
      { flags: '--no-netboot', description: 'disallow netboot (boot from disk)', field: 'netboot', kind: 'negbool' },
      ...BMC_FIELD_FLAGS,
    ],
    toBody: (body) => bmcBody(body),
    filters: [
      { flags: '--site <site>', description: 'only this site', query: 'site' },
      { flags: '--profile <profile>', description: 'only machines with this profile', query: 'profile' },
      { flags: '--mac <mac>', description: 'the machine with this MAC', query: 'mac' },
      { flags: '--bootenv <name>', description: 'only this boot environment', query: 'bootenv' },
      { flags: '--state <state>', description: 'only this lifecycle state (discovered|ready|deploying|deployed|releasing|failed|rescue)', query: 'state' },
      { flags: '--param <key=value>', description: 'param equals value (repeatable)', query: 'param', kind: 'params' },
    ],
  });
  machines
    .command('params <ref>')
    .description("a machine's params; --resolved shows every param's winning value and its source")
    .option('--resolved', 'resolve machine → profiles → site → global → default')
    .action(
      action(async (ref: string, o: { resolved?: boolean }, c: Command) => {
        const g = globals(c);
        const res = await g.client().call<Record<string, { value: unknown; source: string }>>('GET', `/api/v1/machines/${encodeURIComponent(ref)}/params${o.resolved ? '?resolved=true' : ''}`);
        print(g.format === 'table' ? Object.entries(res).map(([name, v]) => ({ name, ...v })) : res, g.format, ['name', 'value', 'source']);
      }),
    );
  machines
    .command('rearm <ref>')
    .description("let the machine's next boot session receive its secret-carrying configs once more (the agent serves them once per deploy)")
    .action(
      action(async (ref: string, _o: unknown, c: Command) => {
        const g = globals(c);
        const res = await g.client().call<{ id: string; name: string; secretsGeneration: number }>('POST', `/api/v1/machines/${encodeURIComponent(ref)}/rearm`);
        print(res, g.format, ['name', 'id', 'secretsGeneration']);
      }),
    );
  registerMachineLifecycleCommands(machines);
  registerMachineWorkflowCommand(machines);
  registerMachinePowerCommands(machines);

  registerTokenCommands(program);
}

function registerTokenCommands(program: Command): void {
  for (const noun of ['tokens', 'token']) {
    const cmd = program.command(noun).description(noun === 'tokens' ? 'manage bearer tokens (admin)' : 'alias of "tokens"');
    if (noun === 'token') cmd.helpCommand(false);
    cmd
      .command('create')
      .description('create a token; prints the secret once (an agent-join token also carries the CA fingerprint)')
      .requiredOption('--role <role>', 'admin|operator|viewer|agent-join')
      .option('--site <site>', 'site (required for agent-join)')
      .option('--ttl <duration>', 'expiry, e.g. 1h, 7d, or "never" (agent-join tokens: 24h unless given; other roles: never)')
      .option('--name <name>', 'a label')
      .action(
        action(async (opts: { role: string; site?: string; ttl?: string; name?: string }, c: Command) => {
          const g = globals(c);
          const res = await g.client().call<{ token: string; expiresAt?: string }>('POST', '/api/v1/tokens', opts);
          const out = { token: res.token, expiresAt: res.expiresAt ?? null };
          if (g.format === 'json') process.stdout.write(JSON.stringify(out) + '\n');
          else if (g.format === 'yaml') print(out, 'yaml');
          else {
            // The token alone on stdout (TOKEN=$(underlay token create …) keeps working); its expiry on stderr.
            process.stdout.write(res.token + '\n');
            process.stderr.write(res.expiresAt ? `expires at ${res.expiresAt}\n` : 'never expires\n');
          }
        }),
      );
    cmd
      .command('list')
      .description('list tokens (never their secrets)')
      .option('--role <role>')
      .option('--site <site>')
      .action(
        action(async (opts: { role?: string; site?: string }, c: Command) => {
          const g = globals(c);
          const q = new URLSearchParams(Object.entries(opts).filter(([, v]) => v) as [string, string][]);
          const page = await g.client().call<{ items: unknown[] }>('GET', `/api/v1/tokens?${q}`);
          printPage(page, g.format, ['id', 'role', 'site', 'name', 'expiresAt', 'revokedAt', 'usedAt']);
        }),
      );
    cmd.command('show <id>').action(
      action(async (id: string, _o: unknown, c: Command) => {
        const g = globals(c);
        print(await g.client().call('GET', `/api/v1/tokens/${encodeURIComponent(id)}`), g.format);
      }),
    );
    for (const verb of ['revoke', 'delete']) {
      cmd.command(`${verb} <id>`).description('revoke a token').action(
        action(async (id: string, _o: unknown, c: Command) => {
          const g = globals(c);
          print(await g.client().call('DELETE', `/api/v1/tokens/${encodeURIComponent(id)}`), g.format);
        }),
      );
    }
  }
}
