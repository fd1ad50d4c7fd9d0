import type { Command } from 'commander';
import { action, collect, globals, parseKeyValue } from './context.js';
import { ApiClientError } from '../client/api-client.js';
import { print, printPage } from './output.js';
import { planUpdate, resolvePlan, type UpdateOps } from './update-plan.js';

/** One CLI flag that maps to a field of the object's create/update body. */
export interface FieldFlag {
  flags: string;
  description: string;
  field: string;
  kind?: 'string' | 'list' | 'json' | 'bool' | 'params' | 'negbool' | 'number';
  /** A list `update` edits (`--add-<item>`, `--remove-<item>`, `--replace-<field>`) instead of replacing it. */
  item?: string;
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
      printPage(page, g.format, spec.columns);
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

  const updateFields = spec.fields.filter((f) => f.kind !== 'params' && !f.item);
  const update = addFieldOptions(noun.command('update <ref>').description(`change fields of a ${spec.singular} (lists and params are edited, not replaced, unless --replace-… says so)`), [
    ...updateFields,
    ...(spec.named === false ? [] : [{ flags: '--name <name>', description: 'rename', field: 'name' }]),
  ]);
  const params = spec.fields.find((f) => f.kind === 'params');
  if (params) {
    update
      .option('--param <key=value>', 'set a param, keeping the others (repeatable; value parsed as JSON if it is JSON)', collect)
      .option('--unset-param <key>', 'remove a param (repeatable)', collect)
      .option('--replace-params <json>', 'replace ALL params with this JSON object (\'{}\' removes every param)');
  }
  const lists = spec.fields.filter((f) => f.item);
  for (const f of lists) {
    update
      .option(`--add-${f.item} <${f.item}>`, `add a ${f.item}, keeping the others (repeatable)`, collect)
      .option(`--remove-${f.item} <${f.item}>`, `remove a ${f.item} (repeatable)`, collect)
      .option(`--replace-${f.field} <list>`, `replace the whole list (comma-separated; "" empties it)`);
  }
  update.action(
    action(async (ref: string, opts: Record<string, unknown>, cmd: Command) => {
      const g = globals(cmd);
      const path = `${base}/${encodeURIComponent(ref)}`;
      let fields = bodyFrom(opts, [...updateFields, { flags: '--name <name>', description: '', field: 'name' }]);
      const ops: UpdateOps = { add: {}, remove: {} };
      if (params) {
        ops.setParams = Object.fromEntries(((opts.param as string[] | undefined) ?? []).map(parseKeyValue));
        ops.unsetParams = opts.unsetParam as string[] | undefined;
        if (opts.replaceParams !== undefined) {
          try {
            ops.replaceParams = JSON.parse(String(opts.replaceParams)) as Record<string, unknown>;
          } catch {
            throw new Error('--replace-params must be a JSON object');
          }
          if (typeof ops.replaceParams !== 'object' || ops.replaceParams === null || Array.isArray(ops.replaceParams)) throw new Error('--replace-params must be a JSON object');
        }
      }
      for (const f of lists) {
        const cap = f.item!.charAt(0).toUpperCase() + f.item!.slice(1);
        if (opts[`add${cap}`]) ops.add![f.field] = opts[`add${cap}`] as string[];
        if (opts[`remove${cap}`]) ops.remove![f.field] = opts[`remove${cap}`] as string[];
        const whole = opts[camel(`--replace-${f.field}`)];
        if (typeof whole === 'string') fields[f.field] = whole.split(',').map((x) => x.trim()).filter(Boolean);
      }
      if (spec.toBody) {
        // toBody may add params (a BMC password): they are set like --param.
        const { params: added, ...rest } = await spec.toBody(fields);
        fields = rest;
        if (added) {
          if (ops.replaceParams) ops.replaceParams = { ...ops.replaceParams, ...(added as Record<string, unknown>) };
          else ops.setParams = { ...ops.setParams, ...(added as Record<string, unknown>) };
        }
      }
      const plan = planUpdate(fields, ops);
      if (Object.keys(plan.body).length === 0 && !plan.needsCurrent) throw new Error('nothing to update: give at least one field flag (see --help)');
      const client = g.client();
      for (let attempt = 0; ; attempt++) {
        let body = plan.body;
        const headers: Record<string, string> = { 'content-type': plan.contentType };
        let seen: string | undefined;
        if (plan.needsCurrent) {
          const current = await client.call<Record<string, unknown>>('GET', path);
          seen = String(current.updatedAt);
          body = resolvePlan(plan, ops, current);
          headers['if-match'] = `"${seen}"`;
        }
        try {
          print(await client.call('PATCH', path, body, headers), g.format);
          return;
        } catch (e) {
          // 409 after a read: retry only if the document changed in between (else it is a real conflict).
          if (!(e instanceof ApiClientError) || e.status !== 409 || seen === undefined || attempt >= 4) throw e;
          const now = await client.call<Record<string, unknown>>('GET', path);
          if (String(now.updatedAt) === seen) throw e;
        }
      }
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
