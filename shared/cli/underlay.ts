#!/usr/bin/env node
import { CommanderError, type Command } from 'commander';
import { EXIT } from './exit-codes.js';
import { buildProgram } from './program.js';

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
    if (first === m.command || first === undefined || first === 'completion' || process.argv.includes('--help') || process.argv.includes('-h')) {
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
  // Commander already printed usage errors and help; it throws them because of exitOverride().
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? EXIT.OK : EXIT.USAGE);
  process.stderr.write(`error: ${e.message}\n`);
  process.exit(EXIT.ERROR);
});
