import Table from 'cli-table3';
import { stringify } from 'yaml';

export type OutputFormat = 'table' | 'json' | 'yaml';

export function defaultFormat(): OutputFormat {
  return process.stdout.isTTY ? 'table' : 'json';
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map(cell).join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Prints a document (object or list of objects) in the chosen format to stdout. */
export function print(data: unknown, format: OutputFormat, columns?: string[]): void {
  if (format === 'json') {
    process.stdout.write(JSON.stringify(data, null, 2) + '\n');
    return;
  }
  if (format === 'yaml') {
    process.stdout.write(stringify(data));
    return;
  }
  const rows = Array.isArray(data) ? (data as Record<string, unknown>[]) : null;
  if (!rows) {
    const t = new Table();
    for (const [k, v] of Object.entries(data as Record<string, unknown>)) t.push({ [k]: cell(v) });
    process.stdout.write(t.toString() + '\n');
    return;
  }
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const t = new Table({ head: cols });
  for (const r of rows) t.push(cols.map((c) => cell(r[c])));
  process.stdout.write(t.toString() + '\n');
}
