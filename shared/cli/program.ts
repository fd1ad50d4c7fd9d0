import { Command, Option } from 'commander';
import { registerResourceCommands } from './resource-commands.js';
import { registerAgentAdminCommands } from './agent-commands.js';
import { registerBootCommands } from './boot-commands.js';
import { registerImageCommands } from './images-commands.js';
import { registerAnsibleInventoryCommands } from './ansible-inventory-commands.js';
import { registerServiceCommands } from './services-commands.js';
import { registerWorkflowCommands } from './workflows-commands.js';
import { registerPkiCommands } from './pki-commands.js';
import { registerApplyCommand } from './apply-commands.js';


/**
 * The one `underlay` binary. API client commands live in shared/ (they only speak HTTP); the central's
 * and the agent's own commands are loaded lazily from their folders, so an agent-only install (agent/ +
 * shared/) works without the central's code and vice versa.
 */
const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('underlay')
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
  registerApplyCommand(program);

  return program;
}
