import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from './program.js';
import { bashCompletion, fishCompletion, zshCompletion } from './completion.js';

/** Runs the generated bash completion for a partial command line; returns the candidates. */
function complete(script: string, words: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'underlay-completion-'));
  try {
    writeFileSync(join(dir, 'c.bash'), script);
    const out = execFileSync('bash', ['-c', `source "$1"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _underlay; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', join(dir, 'c.bash')], { encoding: 'utf8' });
    return out.split('\n').filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('underlay completion', () => {
  const program = buildProgram();
  it('bash: completes commands, subcommands and the options of the command typed so far', () => {
    const script = bashCompletion(program);
    expect(complete(script, ['underlay', 'mach'])).toEqual(['machines']);
    expect(complete(script, ['underlay', 'machines', 'up'])).toEqual(['update']);
    expect(complete(script, ['underlay', 'machines', 'update', 'm1', '--add'])).toEqual(['--address', '--add-mac']);
    expect(complete(script, ['underlay', 'apply', '--dr'])).toEqual(['--dry-run']);
    expect(complete(script, ['underlay', 'machines', 'list', '--ur'])).toEqual(['--url']);
  });
  it('zsh and fish: scripts for the same tree', () => {
    const zsh = zshCompletion(program);
    expect(zsh).toMatch(/^#compdef underlay/);
    expect(zsh).toContain('"underlay machines update" "');
    expect(zsh).toContain('compdef _underlay underlay');
    const fish = fishCompletion(program);
    expect(fish).toContain("complete -c underlay -n '__fish_use_subcommand' -a '");
    expect(fish).toMatch(/__fish_seen_subcommand_from update' -l add-mac/);
  });
});
