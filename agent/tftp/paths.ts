import { realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, sep } from 'node:path';
import { ErrorCode } from './packet.js';

/**
 * Maps a TFTP filename onto a file below the server root, refusing anything that could leave it.
 *
 * Policy (documented in docs/decisions.md):
 * - A leading `/` (or several) is taken as relative to the root: firmware commonly asks for
 *   `/undionly.kpxe`. Doubled slashes and `.` segments are collapsed.
 * - `..` segments, backslashes, NUL/control characters and over-long names are refused with
 *   error 2 (access violation) before the file system is touched.
 * - Symlinks are followed, but the real path must stay below the real root; otherwise error 2.
 * - Missing files, directories, devices and FIFOs answer error 1 (file not found).
 * - Messages are generic ("Access violation", "File not found"): no paths, no errno text.
 */

export type Resolved =
  | { ok: true; path: string; stats: Stats; relative: string }
  | { ok: false; code: number; message: string; reason: string };

export const MAX_PATH_LENGTH = 255;

const denied = (reason: string): Resolved => ({ ok: false, code: ErrorCode.ACCESS_VIOLATION, message: 'Access violation', reason });
const notFound = (reason: string): Resolved => ({ ok: false, code: ErrorCode.FILE_NOT_FOUND, message: 'File not found', reason });

/** Pure part: the request's path as safe segments relative to the root, or why it is refused. */
export function normalizeRequestPath(requested: string): { ok: true; relative: string } | { ok: false; reason: string } {
  if (requested.length === 0) return { ok: false, reason: 'empty path' };
  if (requested.length > MAX_PATH_LENGTH) return { ok: false, reason: 'path too long' };
  for (let i = 0; i < requested.length; i++) {
    const c = requested.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return { ok: false, reason: 'control character in path' };
  }
  if (requested.includes('\\')) return { ok: false, reason: 'backslash in path' };
  const segments: string[] = [];
  for (const seg of requested.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return { ok: false, reason: 'parent segment in path' };
    segments.push(seg);
  }
  if (segments.length === 0) return { ok: false, reason: 'path names the root' };
  return { ok: true, relative: segments.join('/') };
}

function isInside(rootReal: string, candidate: string): boolean {
  return candidate.startsWith(rootReal.endsWith(sep) ? rootReal : rootReal + sep);
}

/**
 * Resolve `requested` below `rootReal` (which must already be a real path: see `realRoot`).
 * Never throws for client-controlled input.
 */
export async function resolveRequestPath(rootReal: string, requested: string): Promise<Resolved> {
  const norm = normalizeRequestPath(requested);
  if (!norm.ok) return denied(norm.reason);
  const joined = join(rootReal, norm.relative);
  let real: string;
  try {
    real = await realpath(joined);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') return denied('permission denied');
    return notFound(code ?? 'realpath failed');
  }
  if (!isInside(rootReal, real)) return denied('resolves outside the root');
  let stats: Stats;
  try {
    stats = await stat(real);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') return denied('permission denied');
    return notFound(code ?? 'stat failed');
  }
  if (!stats.isFile()) return notFound('not a regular file');
  return { ok: true, path: real, stats, relative: norm.relative };
}

/** The root's real path; throws (at construction/start time) when it is not a readable directory. */
export async function realRoot(root: string): Promise<string> {
  const real = await realpath(root);
  const st = await stat(real);
  if (!st.isDirectory()) throw new Error(`TFTP root ${root} is not a directory`);
  return real;
}
