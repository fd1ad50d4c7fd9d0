#!/usr/bin/env node
import { Command, Option } from 'commander';
import { registerResourceCommands } from './resource-commands.js';
import { registerAgentAdminCommands } from './agent-commands.js';
import { registerBootCommands } from './boot-commands.js';
import { registerImageCommands } from './images-commands.js';
import { registerAnsibleInventoryCommands } from './ansible-inventory-commands.js';
import { registerServiceCommands } from './services-commands.js';

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
  return program;
}

/** Feature modules contribute commands: each exports `register(program)`. Missing ones are skipped. */
const MODULES: { command: string; path: string; description: string }[] = [
  { command: 'central', path: '../../central/cli.js', description: 'run the central registry' },
  { command: 'agent', path: '../../agent/cli.js', description: 'run a site agent (join, run)' },
  { command: 'lab', path: '../../scripts/lab/cli.js', description: 'a virtual rack on this host: namespace, agent, PXE-booting QEMU machines' },
];

async function main(): Promise<void> {
  const program = buildProgram();
  const first = process.argv.slice(2).find((a) => !a.startsWith('-'));
  for (const m of MODULES) {
    const url = new URL(m.path, import.meta.url).href;
    if (first === m.command || first === undefined || process.argv.includes('--help') || process.argv.includes('-h')) {
      try {
        const mod = (await import(url)) as { register: (p: Command) => void };
        mod.register(program);
        continue;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
      }
      program.command(m.command).description(`${m.description} (not part of this installation)`).action(() => {
        process.stderr.write(`error: "${m.command}" is not part of this installation\n`);
        process.exitCode = 1;
      });
    }
  }
  // Extra top-level commands contributed by feature modules loaded on demand.
  await program.parseAsync(process.argv);
}

main().catch((e: Error) => {
  process.stderr.write(`error: ${e.message}\n`);
  process.exit(1);
});
