import pg from 'pg';

/** Server settings for `TestPostgres.start` that let `PgStats` read per-statement figures (statements inside PL/pgSQL functions included). */
export const PG_STATS_SETTINGS = ['shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track=all', 'track_functions=pl'];

interface TableRow {
  relname: string;
  ins: number;
  upd: number;
  hot: number;
  del: number;
  seq_scan: number;
  idx_scan: number;
}

/**
 * The bench's `--pg-stats`: PostgreSQL's own accounting of one phase, as deltas. Statements from
 * `pg_stat_statements` (reset at `begin`: calls, rows, total execution time, top by time; nested
 * statements of `underlay_write` show on their own lines), functions from `pg_stat_user_functions`,
 * tuples written and scans per table from `pg_stat_user_tables` (those counters are not resettable per
 * database without superuser rights on all of them, so they are diffed). Per task where it helps.
 */
export class PgStats {
  private tables0 = new Map<string, TableRow>();

  private constructor(private readonly client: pg.Client) {}

  static async open(url: string): Promise<PgStats> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    return new PgStats(client);
  }

  private async tables(): Promise<Map<string, TableRow>> {
    await this.client.query('SELECT pg_stat_clear_snapshot()');
    const rows = (
      await this.client.query<TableRow>(
        'SELECT relname, n_tup_ins::float8 AS ins, n_tup_upd::float8 AS upd, n_tup_hot_upd::float8 AS hot, n_tup_del::float8 AS del, coalesce(seq_scan, 0)::float8 AS seq_scan, coalesce(idx_scan, 0)::float8 AS idx_scan FROM pg_stat_user_tables',
      )
    ).rows;
    return new Map(rows.map((r) => [r.relname, r]));
  }

  async begin(): Promise<void> {
    await this.client.query('SELECT pg_stat_statements_reset(), pg_stat_reset()');
    this.tables0 = await this.tables();
  }

  /** The phase's figures as printable lines. */
  async report(tasks: number): Promise<string[]> {
    // The statistics collector reports backends' counters at most every 0.5 s (PGSTAT_MIN_INTERVAL).
    await new Promise((r) => setTimeout(r, 1000));
    const out: string[] = [];
    const stmts = (
      await this.client.query<{ calls: number; rows: number; ms: number; query: string }>(
        'SELECT calls::float8 AS calls, rows::float8 AS rows, total_exec_time AS ms, query FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15',
      )
    ).rows;
    out.push(`pg-stats: statements by execution time (nested statements of functions included, so times overlap)`);
    for (const s of stmts) {
      out.push(`  ${(s.ms / tasks).toFixed(4)} ms/task  ${s.calls} calls  ${s.rows} rows  ${s.query.replace(/\s+/g, ' ').slice(0, 140)}`);
    }
    const fns = (await this.client.query<{ funcname: string; calls: number; self: number; total: number }>('SELECT funcname, calls::float8 AS calls, self_time AS self, total_time AS total FROM pg_stat_user_functions')).rows;
    for (const f of fns) out.push(`pg-stats: function ${f.funcname}: ${f.calls} calls, ${(f.total / tasks).toFixed(4)} ms/task total, ${(f.self / tasks).toFixed(4)} ms/task self`);
    const t1 = await this.tables();
    for (const [name, r] of t1) {
      const r0 = this.tables0.get(name);
      const d = (k: keyof Omit<TableRow, 'relname'>) => r[k] - (r0?.[k] ?? 0);
      out.push(
        `pg-stats: table ${name}: per task ${(d('ins') / tasks).toFixed(2)} inserted, ${(d('upd') / tasks).toFixed(2)} updated (${(d('hot') / tasks).toFixed(2)} HOT), ${(d('del') / tasks).toFixed(2)} deleted; scans ${d('seq_scan')} seq, ${d('idx_scan')} index`,
      );
    }
    return out;
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}
