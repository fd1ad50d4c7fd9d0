import Table from 'cli-table3';
import { stringify } from 'yaml';
import { colorEnabled } from '../util/color.js';

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

/** Compact, borderless tables (as kubectl prints them); the header bold unless NO_COLOR or not a terminal. */
const NO_BORDERS = { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' };

function table(head?: string[]): Table.Table {
  const style = { head: colorEnabled(process.stdout) ? ['bold'] : [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true };
  return new Table({ chars: NO_BORDERS, style, ...(head ? { head } : {}) });
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
    const t = table();
    for (const [k, v] of Object.entries(data as Record<string, unknown>)) t.push([`${k}:`, cell(v)]);
    process.stdout.write(t.toString().replace(/ +$/gm, '') + '\n');
    return;
  }
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const t = table(cols);
  for (const r of rows) t.push(cols.map((c) => cell(r[c])));
  process.stdout.write(t.toString().replace(/ +$/gm, '') + '\n');
}

/**
 * Prints one page of a list: the page document as JSON/YAML; as a table, its rows (through `row`) and,
 * when the page is not everything, a "showing N of M" line.
 */
export function printPage<T>(page: { items: T[]; total?: number; offset?: number }, format: OutputFormat, columns?: string[], row: (item: T) => Record<string, unknown> = (x) => x as Record<string, unknown>): void {
  if (format !== 'table') return print(page, format);
  print(page.items.map(row), format, columns);
  if (page.total !== undefined && page.total > page.items.length) {
    const from = (page.offset ?? 0) + 1;
    process.stdout.write(`showing ${page.items.length} of ${page.total}${page.items.length ? ` (${from}-${from + page.items.length - 1}; --limit/--offset for more)` : ''}\n`);
  }
}
