import type { Command } from 'commander';
import { vi } from 'vitest';
import { buildProgram } from '../../shared/cli/program.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the `underlay` CLI's own program object in this process against a central (`--url`, `--token`,
 * `--ca` first), capturing stdout, stderr and the exit code it set. `register`: a feature module's commands
 * the binary loads lazily (e.g. central/cli.ts's `register`).
 */
export async function runCliProgram(conn: { url: string; token: string; caFile: string }, args: string[], register?: (p: Command) => void): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  process.exitCode = 0;
  try {
    const program = buildProgram();
    register?.(program);
    await program.exitOverride().parseAsync(['node', 'underlay', '--url', conn.url, '--token', conn.token, '--ca', conn.caFile, ...args]);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, stdout, stderr };
}
