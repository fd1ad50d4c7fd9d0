import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

/** Sends one QMP command over the socket (after the capabilities handshake); resolves with its answer. */
export function qmp(socket: string, execute: string, args?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let buf = '';
    let step = 0;
    s.setTimeout(5000, () => s.destroy(new Error(`QMP ${execute}: no answer`)));
    s.on('error', reject);
    s.on('close', () => (step < 2 ? reject(new Error(`QMP ${execute}: socket closed`)) : undefined));
    s.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as { QMP?: unknown; return?: unknown; error?: { desc: string }; event?: string };
        buf = buf.slice(nl + 1);
        if (msg.event) continue;
        if (msg.QMP && step === 0) {
          step = 1;
          s.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        } else if (step === 1) {
          step = 2;
          s.write(JSON.stringify({ execute, ...(args ? { arguments: args } : {}) }) + '\n');
        } else if (step === 2) {
          s.end();
          if (msg.error) reject(new Error(`QMP ${execute}: ${msg.error.desc}`));
          else resolve(msg.return);
        }
      }
    });
  });
}

/**
 * A QEMU VM a stand-in BMC powers: on = start the process (with `-boot once=n` for a PXE-once override),
 * off = QMP quit, reset = QMP system_reset, state = the process runs and QMP says so.
 */
export class QemuMachine {
  private proc: ChildProcess | undefined;
  readonly launches: string[][] = [];

  constructor(
    private readonly dir: string,
    private readonly args: string[],
  ) {}

  get qmpSocket(): string {
    return join(this.dir, 'qmp.sock');
  }

  async running(): Promise<boolean> {
    if (!this.proc || this.proc.exitCode !== null || !existsSync(this.qmpSocket)) return false;
    const st = (await qmp(this.qmpSocket, 'query-status').catch(() => undefined)) as { running?: boolean } | undefined;
    return !!st?.running;
  }

  async start(bootOnce?: 'pxe'): Promise<void> {
    if (await this.running()) return;
    const argv = [...this.args, '-qmp', `unix:${this.qmpSocket},server=on,wait=off`, ...(bootOnce === 'pxe' ? ['-boot', 'once=n'] : [])];
    this.launches.push(argv);
    this.proc = spawn('qemu-system-x86_64', argv, { stdio: 'ignore' });
    for (let i = 0; i < 100 && !(await this.running()); i++) await new Promise((r) => setTimeout(r, 100));
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await qmp(this.qmpSocket, 'quit').catch(() => p.kill('SIGKILL'));
    if (p.exitCode === null) await new Promise((r) => p.once('exit', r));
  }

  async reset(): Promise<void> {
    await qmp(this.qmpSocket, 'system_reset');
  }

  kill(): void {
    if (this.proc && this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}
