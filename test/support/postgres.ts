import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';
import { checkPrereqs } from './require.js';

/** The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/N/bin), or null. */
export function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'pg_ctl'))) return join(root, v, 'bin');
  return null;
}

/** True when a throwaway cluster can be started here (root, the postgres user, PostgreSQL's binaries); throws in CI when not. */
export function postgresReady(suite: string): boolean {
  const bin = postgresBin();
  return checkPrereqs(suite, { root: true, commands: ['runuser'], files: [bin ? join(bin, 'initdb') : '/usr/lib/postgresql/<N>/bin/initdb'] });
}

/**
 * A throwaway PostgreSQL cluster for a test file: initdb (as the postgres user, trust auth) in a temp
 * dir, listening on 127.0.0.1 at a free port with its socket in the temp dir. `stop()` stops it and
 * removes the dir; call it in afterAll (it is safe to call twice). Each test gets its own database with
 * `createDatabase()` (cheap), so one cluster serves the whole file.
 */
export class TestPostgres {
  private stopped = false;
  private dbs = 0;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
  ) {}

  /** `settings`: more server settings (`name=value`, as `postgres -c` takes them), e.g. a preloaded extension for a bench. */
  static async start(settings: string[] = []): Promise<TestPostgres> {
    const bin = postgresBin();
    if (!bin) throw new Error('PostgreSQL is not installed (Debian package postgresql)');
    const dir = mkdtempSync(join(tmpdir(), 'underlay-pg-'));
    chmodSync(dir, 0o755);
    execFileSync('chown', ['postgres:postgres', dir]);
    const port = await freePort();
    const pgc = new TestPostgres(dir, port, bin);
    try {
      pgc.asPostgres('initdb', ['-D', join(dir, 'data'), '--auth=trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
      const o = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c max_connections=200 -c fsync=on -c synchronous_commit=on${settings.map((x) => ` -c ${x}`).join('')}`;
      pgc.asPostgres('pg_ctl', ['-w', '-D', join(dir, 'data'), '-l', join(dir, 'log'), '-o', o, 'start']);
    } catch (e) {
      pgc.stop();
      throw e;
    }
    return pgc;
  }

  private asPostgres(tool: string, args: string[]): void {
    const r = spawnSync('runuser', ['-u', 'postgres', '--', join(this.bin, tool), ...args], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${tool} failed (${r.status}): ${r.stderr || r.stdout}`);
  }

  url(db = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  /** The postmaster's process id (benches sum its and its backends' CPU time). */
  pid(): number {
    return Number(readFileSync(join(this.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  }

  /** A new empty database; returns its URL. */
  async createDatabase(prefix = 't'): Promise<string> {
    const name = `${prefix}_${process.pid}_${++this.dbs}`;
    const c = new pg.Client({ connectionString: this.url() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
    return this.url(name);
  }

  /** Stops the cluster (fast shutdown) and removes its directory, even if the start failed half-way. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (existsSync(join(this.dir, 'data', 'postmaster.pid'))) {
      try {
        this.asPostgres('pg_ctl', ['-w', '-D', join(this.dir, 'data'), '-m', 'immediate', 'stop']);
      } catch {
        /* removed below either way */
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
