/**
 * One process owns a data directory (the central's data dir, an agent's state dir). The lock is a Unix
 * domain socket the holder listens on inside the directory (`lock.<n>.sock`): the kernel closes it when
 * the holder dies in any way (kill -9, a crash, a zombie waiting to be reaped), so a dead holder is
 * recognised by its socket refusing connections, never by probing a PID (a restarted container gets
 * the same PID 1). A live holder answers a connection with who it is, which the refusal names.
 *
 * Why a socket and not flock(2): Node has no flock, and no maintained flock package is a dependency;
 * the kernel tracks a listening socket's life just as it tracks a flock. Pathname sockets (not the
 * abstract namespace) are found through the file system, so two processes in different network or PID
 * namespaces sharing the directory still see each other. Races between starters: binding a path is
 * atomic (EADDRINUSE), a new holder takes a number one higher than every socket it found dead, and after
 * binding it checks every other socket again: if any answers, it backs off (two racers may both back
 * off; neither ever runs beside a live holder). Limits: a directory on a network file system shared by
 * two hosts is not protected (sockets are host-local).
 */
import { closeSync, openSync, readdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';

export interface LockHolder {
  pid: number;
  hostname: string;
  startedAt: string;
  /** What holds it (central, agent). */
  role: string;
}

export class DirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder | null,
  ) {
    super(
      holder
        ? `${dir} is in use by ${holder.role} process ${holder.pid} on ${holder.hostname} (since ${holder.startedAt}); stop it first`
        : `${dir} is in use by another process (its lock socket answers but did not say who it is); stop it first`,
    );
  }
}

export interface DirLock {
  /** The socket this process holds. */
  readonly path: string;
  release(): Promise<void>;
}

const SOCKET = /^lock\.(\d+)\.sock$/;
/** sun_path holds 108 bytes; longer paths are reached through /proc/self/fd/<dir fd>/. */
const MAX_SOCKET_PATH = 100;
const PROBE_TIMEOUT_MS = 2000;

type Probe = { live: true; holder: LockHolder | null } | { live: false };

/** Runs `fn` with a path to `name` in `dir` short enough for a socket address. */
async function withSocketPath<T>(dir: string, name: string, fn: (path: string) => Promise<T>): Promise<T> {
  const full = join(dir, name);
  if (Buffer.byteLength(full) <= MAX_SOCKET_PATH) return fn(full);
  const fd = openSync(dir, 'r');
  try {
    return await fn(`/proc/self/fd/${fd}/${name}`);
  } finally {
    closeSync(fd);
  }
}

function probe(dir: string, name: string): Promise<Probe> {
  return withSocketPath(dir, name, (path) => new Promise<Probe>((resolve) => {
    const sock = connect(path);
    let data = '';
    let connected = false;
    const done = (p: Probe) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(p);
    };
    // A holder that accepted but does not answer (stopped, overloaded) is still alive.
    const timer = setTimeout(() => done({ live: true, holder: null }), PROBE_TIMEOUT_MS);
    sock.setEncoding('utf8');
    sock.on('connect', () => (connected = true));
    sock.on('data', (d: string) => (data += d));
    sock.on('end', () => {
      let holder: LockHolder | null = null;
      try {
        holder = JSON.parse(data) as LockHolder;
      } catch {
        holder = null;
      }
      done({ live: true, holder });
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (connected) done({ live: true, holder: null });
      // ECONNREFUSED: nobody listens (the holder died); ENOENT: removed meanwhile.
      else if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') done({ live: false });
      else done({ live: true, holder: null }); // unknown: be safe
    });
  }));
}

/**
 * A socket that accepts but says nothing may belong to a holder that is dying right now (its threads
 * still exiting) or is stopped: ask again a few times before calling it live.
 */
async function probeSettled(dir: string, name: string): Promise<Probe> {
  let p = await probe(dir, name);
  for (let i = 0; i < 5 && p.live && p.holder === null; i++) {
    await new Promise((r) => setTimeout(r, 100));
    p = await probe(dir, name);
  }
  return p;
}

function listen(dir: string, name: string, holder: LockHolder): Promise<Server> {
  return withSocketPath(dir, name, (path) => new Promise<Server>((resolve, reject) => {
    const server = createServer((sock) => {
      sock.on('error', () => undefined);
      sock.end(JSON.stringify(holder));
    });
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      server.on('error', () => undefined);
      server.unref(); // the lock must not keep the process alive
      resolve(server);
    });
  }));
}

function sockets(dir: string): { name: string; n: number }[] {
  return readdirSync(dir)
    .map((name) => ({ name, m: SOCKET.exec(name) }))
    .filter((x): x is { name: string; m: RegExpExecArray } => x.m !== null)
    .map((x) => ({ name: x.name, n: Number(x.m[1]) }))
    .sort((a, b) => a.n - b.n);
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone already */
  }
}

/** Takes the directory's lock or throws DirLockedError naming the live holder. */
export async function acquireDirLock(dir: string, role: string): Promise<DirLock> {
  const holder: LockHolder = { pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString(), role };
  for (let attempt = 0; attempt < 10; attempt++) {
    const found = sockets(dir);
    for (const s of found) {
      const p = await probeSettled(dir, s.name);
      if (p.live) throw new DirLockedError(dir, p.holder);
    }
    const name = `lock.${(found.at(-1)?.n ?? 0) + 1}.sock`;
    let server: Server;
    try {
      server = await listen(dir, name, holder);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') continue; // another starter took this number
      throw e;
    }
    const path = join(dir, name);
    const release = () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        unlinkQuiet(path);
      });
    // Check again: a racer that bound another number at the same time and answers means back off.
    for (const s of sockets(dir)) {
      if (s.name === name) continue;
      const p = await probeSettled(dir, s.name);
      if (p.live) {
        await release();
        throw new DirLockedError(dir, p.holder);
      }
      unlinkQuiet(join(dir, s.name)); // left by a dead holder
    }
    unlinkQuiet(join(dir, 'lock')); // the PID lock file of earlier versions
    return { path, release };
  }
  throw new DirLockedError(dir, null);
}
