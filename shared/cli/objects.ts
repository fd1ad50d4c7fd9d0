import type { Command } from 'commander';
import { action, collect, globals, parseKeyValue } from './context.js';
import { print } from './output.js';

/** One CLI flag that maps to a field of the object's create/update body. */
export interface FieldFlag {
  flags: string;
  description: string;
  field: string;
  kind?: 'string' | 'list' | 'json' | 'bool' | 'params' | 'negbool' | 'number';
}

export interface ObjectCommandSpec {
  /** CLI noun and API path segment, e.g. "machines". */
  noun: string;
  singular: string;
  columns: string[];
  fields: FieldFlag[];
  /** list filters: flag → query parameter */
  filters?: { flags: string; description: string; query: string; kind?: 'string' | 'params' }[];
  /** Whether `create NAME` takes the name positionally (true for all inventory objects). */
  named?: boolean;
  /** Final touch to a create/update body (e.g. turning `--range A-B` into `{start, end}`). */
  toBody?: (body: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>;
}

function bodyFrom(opts: Record<string, unknown>, fields: FieldFlag[]): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const f of fields) {
    const key = camel(f.flags);
    const v = opts[key];
    if (v === undefined) continue;
    switch (f.kind ?? 'string') {
      case 'json':
        try {
          body[f.field] = JSON.parse(String(v));
        } catch {
          throw new Error(`--${kebab(key)} must be JSON`);
        }
        break;
      case 'params':
        body[f.field] = Object.fromEntries((v as string[]).map(parseKeyValue));
        break;
      case 'negbool':
        body[f.field] = v;
        break;
      case 'number':
        body[f.field] = Number(v);
        if (!Number.isFinite(body[f.field])) throw new Error(`--${kebab(key)} must be a number`);
        break;
      default:
        body[f.field] = v;
    }
  }
  return body;
}

function camel(flags: string): string {
  const long = /--(no-)?([a-z0-9-]+)/.exec(flags)![2];
  return long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function addFieldOptions(cmd: Command, fields: FieldFlag[]): Command {
  for (const f of fields) {
    if (f.kind === 'list' || f.kind === 'params') cmd.option(f.flags, f.description, collect);
    else cmd.option(f.flags, f.description);
  }
  return cmd;
}

/** drpcli-style `underlay <noun> list|show|create|update|delete`. */
export function registerObjectCommands(program: Command, spec: ObjectCommandSpec): Command {
  const noun = program.command(spec.noun).description(`manage ${spec.noun}`);
  const base = `/api/v1/${spec.noun}`;

  const list = noun
    .command('list')
    .description(`list ${spec.noun}`)
    .option('--limit <n>', 'page size', '100')
    .option('--offset <n>', 'skip this many', '0');
  for (const f of spec.filters ?? []) {
    if (f.kind === 'params') list.option(f.flags, f.description, collect);
    else list.option(f.flags, f.description);
  }
  list.action(
    action(async (opts: Record<string, unknown>, cmd: Command) => {
      const g = globals(cmd);
      const q = new URLSearchParams({ limit: String(opts.limit), offset: String(opts.offset) });
      for (const f of spec.filters ?? []) {
        const v = opts[camel(f.flags)];
        if (v === undefined) continue;
        if (f.kind === 'params') for (const kv of v as string[]) q.append(`param.${kv.split('=')[0]}`, kv.slice(kv.indexOf('=') + 1));
        else q.set(f.query, String(v));
      }
      const page = await g.client().call<{ items: Record<string, unknown>[]; total: number }>('GET', `${base}?${q}`);
      print(g.format === 'table' ? page.items : page, g.format, spec.columns);
    }),
  );

  noun
    .command('show <ref>')
    .description(`show one ${spec.singular} (by name or id)`)
    .action(
      action(async (ref: string, _o: unknown, cmd: Command) => {
        const g = globals(cmd);
        print(await g.client().call('GET', `${base}/${encodeURIComponent(ref)}`), g.format);
      }),
    );

  addFieldOptions(noun.command(spec.named === false ? 'create' : 'create <name>').description(`create a ${spec.singular}`), spec.fields).action(
    action(async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const opts = args[args.length - 2] as Record<string, unknown>;
      const g = globals(cmd);
      let body = bodyFrom(opts, spec.fields);
      if (spec.named !== false) body.name = args[0];
      if (spec.toBody) body = await spec.toBody(body);
      print(await g.client().call('POST', base, body), g.format);
    }),
  );

  addFieldOptions(noun.command('update <ref>').description(`change fields of a ${spec.singular}`), [
    ...spec.fields,
    ...(spec.named === false ? [] : [{ flags: '--name <name>', description: 'rename', field: 'name' }]),
  ]).action(
    action(async (ref: string, opts: Record<string, unknown>, cmd: Command) => {
      const g = globals(cmd);
      let body = bodyFrom(opts, [...spec.fields, { flags: '--name <name>', description: '', field: 'name' }]);
      if (spec.toBody) body = await spec.toBody(body);
      if (Object.keys(body).length === 0) throw new Error('nothing to update: give at least one field flag (see --help)');
      print(await g.client().call('PATCH', `${base}/${encodeURIComponent(ref)}`, body), g.format);
    }),
  );

  noun
    .command('delete <ref>')
    .description(`delete a ${spec.singular}`)
    .action(
      action(async (ref: string, _o: unknown, cmd: Command) => {
        const g = globals(cmd);
        await g.client().call('DELETE', `${base}/${encodeURIComponent(ref)}`);
        if (g.format === 'json') print({ deleted: ref }, 'json');
        else process.stdout.write(`deleted ${spec.singular} ${ref}\n`);
      }),
    );
  return noun;
}
