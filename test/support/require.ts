import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Environment checks for tests that need root, network namespaces, QEMU or Debian tools.
 * Outside CI a missing prerequisite skips the suite with a reason; in CI (CI=true) it fails loudly,
 * so a green CI run never hides a test that did not run.
 */
export interface Prereq {
  name: string;
  ok: boolean;
  hint: string;
}

export function haveCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function prereqs(opts: { root?: boolean; commands?: string[]; files?: string[] }): Prereq[] {
  const out: Prereq[] = [];
  if (opts.root) out.push({ name: 'root', ok: isRoot(), hint: 'run the tests as root (network namespaces, ports 67/69)' });
  for (const c of opts.commands ?? []) out.push({ name: c, ok: haveCommand(c), hint: `install the Debian package providing ${c} (see .ci/run)` });
  for (const f of opts.files ?? []) out.push({ name: f, ok: existsSync(f), hint: `missing ${f} (see .ci/run for the Debian packages)` });
  return out;
}

/**
 * Returns true when the suite can run. When it cannot: throws in CI, returns false elsewhere
 * (callers use `describe.skipIf(!ready)`), and prints why either way.
 */
export function checkPrereqs(suite: string, opts: { root?: boolean; commands?: string[]; files?: string[] }): boolean {
  const missing = prereqs(opts).filter((p) => !p.ok);
  if (missing.length === 0) return true;
  const msg = `${suite}: missing prerequisites: ${missing.map((m) => `${m.name} (${m.hint})`).join('; ')}`;
  if (process.env.CI === 'true') throw new Error(msg);
  console.warn(`SKIPPING ${msg}`);
  return false;
}
