import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A throw-away network namespace with a bridge, for tests. Addresses come from 198.18.0.0/15 only.
 * Always call `destroy()` in an afterAll/finally: it kills every process started through `spawn()` and
 * deletes the namespace (which removes its bridge, taps and veths).
 */
export class NetNs {
  readonly name: string;
  private procs: ChildProcess[] = [];

  constructor(prefix = 'ul') {
    this.name = `${prefix}-${randomBytes(3).toString('hex')}`;
    ip(['netns', 'add', this.name]);
    this.exec(['ip', 'link', 'set', 'lo', 'up']);
  }

  /** Run a command inside the namespace, synchronously; returns stdout. */
  exec(argv: string[], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', this.name, ...argv], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** Start a long-running process inside the namespace; it is killed by destroy(). */
  spawn(argv: string[], opts: SpawnOptions = {}): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', this.name, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], ...opts, detached: true });
    this.procs.push(p);
    return p;
  }

  /** Create a bridge with an address, e.g. addBridge('br0', '198.18.0.1/24'). */
  addBridge(name: string, cidr?: string): void {
    this.exec(['ip', 'link', 'add', name, 'type', 'bridge']);
    if (cidr) this.exec(['ip', 'addr', 'add', cidr, 'dev', name]);
    this.exec(['ip', 'link', 'set', name, 'up']);
  }

  /** Create a tap attached to a bridge (for QEMU). */
  addTap(name: string, bridge: string): void {
    this.exec(['ip', 'tuntap', 'add', 'dev', name, 'mode', 'tap']);
    this.exec(['ip', 'link', 'set', name, 'master', bridge]);
    this.exec(['ip', 'link', 'set', name, 'up']);
  }

  /**
   * Create a client namespace attached to a bridge of this one through a veth pair; returns the client
   * namespace (destroyed together with this one).
   */
  addClient(bridge: string, mac?: string): NetNs {
    const client = new NetNs(`${this.name.slice(0, 6)}c`);
    this.children.push(client);
    const a = `v${randomBytes(3).toString('hex')}`;
    const b = `v${randomBytes(3).toString('hex')}`;
    this.exec(['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    this.exec(['ip', 'link', 'set', a, 'master', bridge]);
    this.exec(['ip', 'link', 'set', a, 'up']);
    this.exec(['ip', 'link', 'set', b, 'netns', client.name]);
    client.exec(['ip', 'link', 'set', b, 'name', 'eth0']);
    if (mac) client.exec(['ip', 'link', 'set', 'eth0', 'address', mac]);
    client.exec(['ip', 'link', 'set', 'eth0', 'up']);
    return client;
  }

  private children: NetNs[] = [];

  destroy(): void {
    for (const c of this.children) c.destroy();
    for (const p of this.procs) {
      if (p.exitCode === null && p.pid) {
        try {
          process.kill(-p.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    this.procs = [];
    try {
      // Kill anything still running in the namespace (processes started with exec that forked).
      const pids = execFileSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    } catch {
      /* namespace already gone */
    }
    try {
      ip(['netns', 'del', this.name]);
    } catch {
      /* already gone */
    }
  }
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}
