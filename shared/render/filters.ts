import { stringify as yamlStringify } from 'yaml';

/** Filters added to the template engine for boot files. All pure, all total over template data. */

/** `{{ x | json }}` / `{{ x | json: 2 }}`: JSON text (strings come out quoted and escaped). */
export function jsonFilter(value: unknown, indent?: number): string {
  const text = JSON.stringify(value === undefined ? null : value, null, typeof indent === 'number' ? indent : undefined);
  return text;
}

/** `{{ x | base64 }}`: UTF-8 text (or JSON of a non-string) as base64. */
export function base64Filter(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? null);
  return Buffer.from(text, 'utf8').toString('base64');
}

/** `{{ x | yaml }}`: a YAML document without the trailing newline (compose inside YAML with `| indent`). */
export function yamlFilter(value: unknown): string {
  return yamlStringify(value ?? null, { lineWidth: 0 }).replace(/\n$/, '');
}

/** `{{ x | indent: 4 }}`: indents every line but the first (to nest a multi-line value in YAML). */
export function indentFilter(value: unknown, width?: number): string {
  const pad = ' '.repeat(typeof width === 'number' && width >= 0 && width <= 64 ? width : 2);
  return String(value ?? '').replace(/\n/g, `\n${pad}`);
}

/** `{{ x | shell_quote }}`: one POSIX-sh word, single-quoted. */
export function shellQuoteFilter(value: unknown): string {
  return `'${String(value ?? '').replace(/'/g, `'\\''`)}'`;
}
