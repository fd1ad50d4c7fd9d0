/**
 * Network namespaces for the boot-storm bench (a copy of test/support/netns.ts's idea, kept here because
 * tsconfig does not compile test/). Addresses come from 198.18.0.0/15 only.
 *
 *   server ns: br0 198.18.0.1/24, route 198.19.0.0/16 via 198.18.0.2 (the relay)
 *   client ns: eth0 198.18.0.2/24 (veth into br0) and 198.19.0.1/32 (the relay's client-side address = giaddr;
 *              on eth0, not lo: perfdhcp binds its socket to the interface holding its local address)
 *
 * The pool subnet is 198.18.0.0/15 (it contains giaddr; ~130,000 addresses for the 100,000-client runs); the
 * server's own /24 and the relay's 198.19.0.0/24 are outside the range.
 *
 * Every process started with `spawn()` is remembered and killed by PID in `destroy()`; `destroy()` then
 * deletes both namespaces (which removes the bridge and the veth pair).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const SERVER_ADDR = '198.18.0.1';
export const RELAY_LINK_ADDR = '198.18.0.2';
export const GIADDR = '198.19.0.1';
export const POOL_CIDR = '198.18.0.0/15';
export const POOL_START = '198.18.2.0';
/** Routed to the relay (replies to giaddr). */
export const RELAY_NET = '198.19.0.0/16';
export const POOL_END = '198.19.254.254';

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export class Ns {
  constructor(readonly name: string) {}
  exec(argv: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }
  argv(argv: string[]): string[] {
    return ['netns', 'exec', this.name, ...argv];
  }
}

export class BenchNet {
  readonly server: Ns;
  readonly client: Ns;
  private procs: ChildProcess[] = [];
  private created: string[] = [];

  constructor() {
    const tag = randomBytes(3).toString('hex');
    // UL_BENCH_NS_PREFIX: benches run side by side (several people on one host) name their namespaces apart.
    const prefix = process.env.UL_BENCH_NS_PREFIX || 'ulboot';
    this.server = new Ns(`${prefix}-${tag}-s`);
    this.client = new Ns(`${prefix}-${tag}-c`);
    try {
      for (const ns of [this.server, this.client]) {
        ip(['netns', 'add', ns.name]);
        this.created.push(ns.name);
        ns.exec(['ip', 'link', 'set', 'lo', 'up']);
      }
      const s = this.server;
      const c = this.client;
      s.exec(['ip', 'link', 'add', 'br0', 'type', 'bridge']);
      s.exec(['ip', 'addr', 'add', `${SERVER_ADDR}/24`, 'dev', 'br0']);
      s.exec(['ip', 'link', 'set', 'br0', 'up']);
      s.exec(['ip', 'link', 'add', 'vs0', 'type', 'veth', 'peer', 'name', 'vc0']);
      s.exec(['ip', 'link', 'set', 'vs0', 'master', 'br0']);
      s.exec(['ip', 'link', 'set', 'vs0', 'up']);
      s.exec(['ip', 'link', 'set', 'vc0', 'netns', c.name]);
      c.exec(['ip', 'link', 'set', 'vc0', 'name', 'eth0']);
      c.exec(['ip', 'addr', 'add', `${RELAY_LINK_ADDR}/24`, 'dev', 'eth0']);
      c.exec(['ip', 'link', 'set', 'eth0', 'up']);
      c.exec(['ip', 'addr', 'add', `${GIADDR}/32`, 'dev', 'eth0']);
      s.exec(['ip', 'route', 'add', RELAY_NET, 'via', RELAY_LINK_ADDR]);
      // The bridge needs a moment to reach forwarding state; wait until the client can reach the server.
      for (let i = 0; i < 50; i++) {
        try {
          c.exec(['ping', '-c', '1', '-W', '1', SERVER_ADDR]);
          break;
        } catch {
          execFileSync('sleep', ['0.1']);
        }
      }
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  /** Start a process inside a namespace; killed by PID in destroy() (or by `kill`). */
  spawn(ns: Ns, argv: string[], opts: SpawnOptions = {}): ChildProcess {
    // `ip netns exec` execs the command after setns: the PID is the command's own.
    const p = spawn('ip', ns.argv(argv), { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.procs.push(p);
    return p;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async kill(p: ChildProcess, graceMs = 3000): Promise<void> {
    if (p.exitCode !== null || p.signalCode !== null || !p.pid) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(p.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    await exited;
    clearTimeout(t);
    this.procs = this.procs.filter((x) => x !== p);
  }

  destroy(): void {
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null && p.pid) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    this.procs = [];
    // Children of our servers (tftpd-hpa and busybox httpd fork per transfer/connection): the namespaces are
    // ours alone, so whatever still runs in them was started by this bench.
    for (const name of this.created) {
      try {
        const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      } catch {
        /* namespace gone */
      }
    }
    for (const name of this.created.reverse()) {
      try {
        ip(['netns', 'del', name]);
      } catch {
        /* already gone */
      }
    }
    this.created = [];
  }
}
