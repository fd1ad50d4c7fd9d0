import { openSync, writeSync, closeSync, readFileSync, unlinkSync, fsyncSync } from 'node:fs';
import { hostname } from 'node:os';
import { StoreLockedError } from './types.js';

interface LockInfo {
  pid: number;
  hostname: string;
  startedAt: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One central process owns a data directory. The lock file names its holder; a lock left by a dead
 * process on this host (kill -9) is taken over.
 */
export function acquireDataDirLock(path: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      const info: LockInfo = { pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString() };
      writeSync(fd, JSON.stringify(info));
      fsyncSync(fd);
      closeSync(fd);
      return () => {
        try {
          const held = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
          if (held.pid === process.pid) unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let held: LockInfo | undefined;
      try {
        held = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
      } catch {
        held = undefined; // torn lock file: its writer died mid-write
      }
      if (held && (held.hostname !== hostname() || alive(held.pid))) {
        throw new StoreLockedError(
          `data directory is in use by process ${held.pid} on ${held.hostname} (since ${held.startedAt}); lock file ${path}`,
        );
      }
      unlinkSync(path); // stale
    }
  }
  throw new StoreLockedError(`could not acquire ${path}`);
}
