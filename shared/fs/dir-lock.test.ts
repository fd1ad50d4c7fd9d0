import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireDirLock, DirLockedError } from './dir-lock.js';

let dir: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dir-lock-'));
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const socks = () => readdirSync(dir).filter((f) => f.startsWith('lock'));

/**
 * A holder in another process, listening on `lock.1.sock` as a live lock holder does; `shell` runs it
 * under `sh -c '… & exec sleep'`, whose sleep never reaps it: killed, it stays a zombie.
 */
async function holderProcess(opts: { zombie?: boolean } = {}): Promise<{ proc: ChildProcess; pid: number }> {
  const js = `const s=require('net').createServer(c=>c.end(JSON.stringify({pid:process.pid,hostname:'h',startedAt:'t',role:'central'})));s.listen(${JSON.stringify(join(dir, 'lock.1.sock'))},()=>console.log(process.pid));`;
  const proc = opts.zombie
    ? spawn('sh', ['-c', `"$0" -e "$1" & exec sleep 60`, process.execPath, js], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, ['-e', js], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  const pid = await new Promise<number>((resolve) => proc.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  return { proc, pid };
}

describe('acquireDirLock', () => {
  it('refuses a second holder, naming the live one, until it is released', async () => {
    const lock = await acquireDirLock(dir, 'central');
    const err = await acquireDirLock(dir, 'central').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirLockedError);
    expect((err as DirLockedError).holder).toMatchObject({ pid: process.pid, role: 'central' });
    expect((err as Error).message).toContain(`central process ${process.pid}`);
    await lock.release();
    expect(socks()).toEqual([]);
    const again = await acquireDirLock(dir, 'central');
    await again.release();
  });

  it('takes over from a holder killed with kill -9 (its socket file is left behind)', async () => {
    const { proc, pid } = await holderProcess();
    await expect(acquireDirLock(dir, 'central')).rejects.toThrow(`central process ${pid}`);
    proc.kill('SIGKILL');
    await new Promise((r) => proc.once('exit', r));
    expect(socks()).toEqual(['lock.1.sock']); // stale
    const lock = await acquireDirLock(dir, 'central');
    expect(socks()).toEqual(['lock.2.sock']); // the stale one is cleaned up
    await lock.release();
  });

  it('takes over from a zombie holder (a PID probe would still see it alive)', async () => {
    const { proc, pid } = await holderProcess({ zombie: true });
    process.kill(pid, 'SIGKILL');
    // Its parent (sleep) never reaps it: a zombie, and kill(pid, 0) still succeeds.
    for (let i = 0; i < 100 && !/State:\s+Z/.test(readFileSync(`/proc/${pid}/status`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 20));
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/State:\s+Z/);
    expect(() => process.kill(pid, 0)).not.toThrow();
    const lock = await acquireDirLock(dir, 'central');
    await lock.release();
    proc.kill('SIGKILL');
  });

  it('lets exactly one of several concurrent starters win', async () => {
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => acquireDirLock(dir, 'central')));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(DirLockedError);
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireDirLock>>>).value.release();
  });

  it('works in a directory whose path is too long for a socket address', async () => {
    const deep = join(dir, 'x'.repeat(60), 'y'.repeat(60));
    mkdirSync(deep, { recursive: true });
    const lock = await acquireDirLock(deep, 'agent');
    expect(existsSync(join(deep, 'lock.1.sock'))).toBe(true);
    await expect(acquireDirLock(deep, 'agent')).rejects.toThrow(/agent process/);
    await lock.release();
    expect(readdirSync(deep)).toEqual([]);
  });
});
