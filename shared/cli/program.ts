import { Command, Option } from 'commander';
import { registerResourceCommands } from './resource-commands.js';
import { registerAgentAdminCommands } from './agent-commands.js';
import { registerBootCommands } from './boot-commands.js';
import { registerImageCommands } from './images-commands.js';
import { registerAnsibleInventoryCommands } from './ansible-inventory-commands.js';
import { registerServiceCommands } from './services-commands.js';
import { registerWorkflowCommands } from './workflows-commands.js';
import { registerPkiCommands } from './pki-commands.js';
import { registerEventCommands } from './events-commands.js';
import { registerApplyCommand } from './apply-commands.js';
import { COMPLETIONS } from './completion.js';
import { EXIT_TABLE } from './exit-codes.js';



/**
 * The one `underlay` binary. API client commands live in shared/ (they only speak HTTP); the central's
 * and the agent's own commands are loaded lazily from their folders, so an agent-only install (agent/ +
 * shared/) works without the central's code and vice versa.
 */
const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('underlay')
    // Inherited by every subcommand created below: usage errors throw (underlay.ts exits with EXIT.USAGE),
    // and help marks the flags a command cannot do without.
    .exitOverride()
    .configureHelp({ optionDescription: (o) => `${o.description}${o.mandatory ? ' (required)' : ''}${o.defaultValue !== undefined && !o.negate ? ` (default: ${JSON.stringify(o.defaultValue)})` : ''}${o.argChoices ? ` (choices: ${o.argChoices.join(', ')})` : ''}` })
    .description('Underlay: bare-metal provisioning — central registry, site agents, boot services')
    .version(VERSION)
    .option('--url <url>', 'central URL (env UNDERLAY_URL)')
    .option('--token <token>', 'bearer token (env UNDERLAY_TOKEN)')
    .option('--ca <file>', "CA certificate of the central (env UNDERLAY_CA)")
    .addOption(new Option('-o, --output <format>', 'output format (table on a TTY, json otherwise)').choices(['table', 'json', 'yaml']))
    .showHelpAfterError()
    .enablePositionalOptions(false);
  registerResourceCommands(program);
  registerAgentAdminCommands(program);
  registerBootCommands(program);
  registerImageCommands(program);
  registerAnsibleInventoryCommands(program);
  registerServiceCommands(program);
  registerWorkflowCommands(program);
  registerPkiCommands(program);
  registerEventCommands(program);
  registerApplyCommand(program);
  program
    .command('completion')
    .description('print a shell completion script: source <(underlay completion bash)')
    .argument('<shell>', 'bash, zsh or fish')
    .action((shell: string) => {
      const make = COMPLETIONS[shell as keyof typeof COMPLETIONS];
      if (!make) program.error(`error: no completion for "${shell}" (bash, zsh or fish)`, { exitCode: 64, code: 'underlay.usage' });
      process.stdout.write(make(program));
    });
  program.addHelpText('after', `\nExit codes:\n${EXIT_TABLE.map(([c, d]) => `  ${String(c).padStart(2)}  ${d}`).join('\n')}\n\nNO_COLOR=1 turns colour off; UNDERLAY_LOG_FORMAT=json|pretty chooses the log format.`);


  return program;
}
