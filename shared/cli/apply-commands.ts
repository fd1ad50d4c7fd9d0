import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { action, globals } from './context.js';
import { applyObjects, formatResult, KINDS, parseApplyFile } from './apply.js';
import { print } from './output.js';

const MAX_FILE_BYTES = 16 * 1024 * 1024;

function readInput(file: string): string {
  if (file === '-') return readFileSync(0, 'utf8');
  if (statSync(file).size > MAX_FILE_BYTES) throw new Error(`${file} is larger than ${MAX_FILE_BYTES / 1048576} MiB`);
  return readFileSync(file, 'utf8');
}

/** `underlay apply -f FILE [--dry-run]` (shared/cli/apply.ts). */
export function registerApplyCommand(program: Command): void {
  program
    .command('apply')
    .description(`create or update objects from YAML or JSON files (idempotent, like kubectl apply); kinds: ${KINDS.map((k) => k.kind).join(', ')}`)
    .requiredOption('-f, --filename <file...>', 'a YAML (--- between documents) or JSON file, "-" for stdin (repeatable)')
    .option('--dry-run', 'change nothing: print what would be created or changed, with the diff')
    .option('--diff', 'print the changed fields as well')
    .addHelpText('after', '\nEach object is its create body plus "kind", e.g.\n  kind: Machine\n  name: m1\n  site: dc1\n  macs: [52:54:00:00:00:01]\n  params: {rack: r1}\nFields the file gives replace the stored ones (params too: the file is the whole map); fields it leaves out are kept.\nObjects go in dependency order (sites before machines …). Secret values already set are not compared or resent.')
    .action(
      action(async (o: { filename: string[]; dryRun?: boolean; diff?: boolean }, cmd: Command) => {
        const g = globals(cmd);
        const objects = o.filename.flatMap((f) => parseApplyFile(readInput(f), f === '-' ? 'stdin' : f));
        const json = g.format !== 'table';
        const results = await applyObjects(g.client(), objects, !!o.dryRun, (r) => {
          if (!json) process.stdout.write(formatResult(r, { dryRun: !!o.dryRun, diff: !!o.dryRun || !!o.diff }));
        });
        if (json) print({ dryRun: !!o.dryRun, results }, g.format);
      }),
    );
}
