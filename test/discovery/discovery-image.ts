// The discovery image's build for the tests: scripts/images/build-discovery.sh, cached per input hash
// (under its own lock, so the first file that needs it builds it and the others wait, then reuse it).
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const BUILD = join(REPO, 'scripts/images/build-discovery.sh');

export interface Built {
  dir: string;
  stdout: string;
  stderr: string;
}

export function buildDiscovery(args: string[] = [], env: NodeJS.ProcessEnv = process.env): Built {
  const r = spawnSync('bash', [BUILD, ...args], { cwd: REPO, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`build-discovery.sh failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  const lines = r.stdout.trim().split('\n');
  return { dir: lines[lines.length - 1], stdout: r.stdout, stderr: r.stderr };
}
