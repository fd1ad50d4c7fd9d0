import type { Command } from 'commander';
import type { Service, WaitResult } from '../api/services.js';
import { ApiClientError } from '../client/api-client.js';
import { parseDuration } from '../util/duration.js';
import { action, collect, globals } from './context.js';
import { EXIT } from './exit-codes.js';
import { print } from './output.js';

/** Server-side cap of one blocking request; longer waits are several requests. */
const MAX_REQUEST_MS = 10 * 60_000;

/** Exit code of `services wait` when the timeout passes first. */
export const WAIT_TIMEOUT_EXIT = EXIT.TIMEOUT;

const enc = encodeURIComponent;

function memberRows(s: Service) {
  return s.members.map((m) => ({ id: m.id, machine: m.machine, address: m.address, port: m.port, status: m.status, ttl: m.ttl, note: m.note, tags: m.tags }));
}

/** `underlay services …`: the service registry (Consul-style TTL health, watch, wait). */
export function registerServiceCommands(program: Command): void {
  const svc = program.command('services').description('service registry: members, TTL health, watch, wait (cluster linking)');

  svc
    .command('create <name>')
    .description('create a service (registering a member also creates it)')
    .option('--description <text>', 'free text')
    .option('--tag <tag>', 'a tag (repeatable)', collect)
    .action(
      action(async (name: string, o: { description?: string; tag?: string[] }, c: Command) => {
        const g = globals(c);
        print(await g.client().call('POST', '/api/v1/services', { name, description: o.description, tags: o.tag ?? [] }), g.format);
      }),
    );

  svc
    .command('list')
    .description('list services with their passing/total member counts')
    .action(
      action(async (_o: unknown, c: Command) => {
        const g = globals(c);
        const page = await g.client().call<{ items: Service[]; index: number }>('GET', '/api/v1/services');
        if (g.format === 'table') {
          print(
            page.items.map((s) => ({ name: s.name, passing: s.members.filter((m) => m.status === 'passing').length, members: s.members.length, tags: s.tags, index: s.modifyIndex })),
            'table',
            ['name', 'passing', 'members', 'tags', 'index'],
          );
        } else print(page, g.format);
      }),
    );

  svc
    .command('show <name>')
    .description('show a service and its members')
    .action(
      action(async (name: string, _o: unknown, c: Command) => {
        const g = globals(c);
        const s = await g.client().call<Service>('GET', `/api/v1/services/${enc(name)}`);
        if (g.format === 'table') print(memberRows(s), 'table', ['id', 'machine', 'address', 'port', 'status', 'ttl', 'note', 'tags']);
        else print(s, g.format);
      }),
    );

  svc
    .command('delete <name>')
    .description('delete a service and all its members')
    .action(
      action(async (name: string, _o: unknown, c: Command) => {
        const g = globals(c);
        await g.client().call('DELETE', `/api/v1/services/${enc(name)}`);
        if (g.format === 'json') print({ deleted: name }, 'json');
        else process.stdout.write(`deleted service ${name}\n`);
      }),
    );

  svc
    .command('register <name>')
    .description('register (add or replace) a member of a service')
    .requiredOption('--port <port>', 'port')
    .option('--id <id>', 'member id (default: <machine or address>-<port>)')
    .option('--machine <machine>', 'the machine it runs on')
    .option('--address <address>', "address (default: the machine's address)")
    .option('--tag <tag>', 'a tag (repeatable)', collect)
    .option('--meta <key=value>', 'metadata (repeatable)', collect)
    .option('--ttl <duration>', 'turns critical without a heartbeat for this long, e.g. 30s')
    .option('--deregister-after <duration>', 'removed after being critical this long, e.g. 10m')
    .option('--status <status>', 'initial status: passing|warning|critical (default critical)')
    .option('--note <text>', 'health output')
    .action(
      action(async (name: string, o: Record<string, string | string[] | undefined>, c: Command) => {
        const g = globals(c);
        const port = Number(o.port);
        if (!Number.isInteger(port)) throw new Error(`--port must be a number (got "${String(o.port)}")`);
        const meta: Record<string, string> = {};
        for (const kv of (o.meta as string[] | undefined) ?? []) {
          const i = kv.indexOf('=');
          if (i <= 0) throw new Error(`--meta expects key=value, got "${kv}"`);
          meta[kv.slice(0, i)] = kv.slice(i + 1);
        }
        const body = {
          port,
          ...(o.id ? { id: o.id } : {}),
          ...(o.machine ? { machine: o.machine } : {}),
          ...(o.address ? { address: o.address } : {}),
          tags: (o.tag as string[] | undefined) ?? [],
          meta,
          ...(o.ttl ? { ttl: o.ttl } : {}),
          ...(o.deregisterAfter ? { deregisterCriticalAfter: o.deregisterAfter } : {}),
          ...(o.status ? { status: o.status } : {}),
          ...(o.note ? { note: o.note } : {}),
        };
        print(await g.client().call('POST', `/api/v1/services/${enc(name)}/members`, body), g.format);
      }),
    );

  svc
    .command('deregister <name> <id>')
    .description('remove a member')
    .action(
      action(async (name: string, id: string, _o: unknown, c: Command) => {
        const g = globals(c);
        await g.client().call('DELETE', `/api/v1/services/${enc(name)}/members/${enc(id)}`);
        if (g.format === 'json') print({ deregistered: id, service: name }, 'json');
        else process.stdout.write(`deregistered ${id} from ${name}\n`);
      }),
    );

  for (const [verb, status] of [['pass', 'passing'], ['warn', 'warning'], ['fail', 'critical']] as const) {
    svc
      .command(`${verb} <name> <id>`)
      .description(`TTL heartbeat: mark the member ${status} and restart its TTL`)
      .option('--note <text>', 'health output')
      .action(
        action(async (name: string, id: string, o: { note?: string }, c: Command) => {
          const g = globals(c);
          print(await g.client().call('PUT', `/api/v1/services/${enc(name)}/members/${enc(id)}/${verb}`, o.note !== undefined ? { note: o.note } : undefined), g.format);
        }),
      );
  }

  svc
    .command('watch <name>')
    .description('print the service as one JSON line now and after each change (blocking queries)')
    .option('--index <n>', 'start after this index (default: print the current state first)')
    .option('--wait <duration>', 'per-request wait (default 5m, at most 10m)')
    .option('--count <n>', 'stop after printing this many lines')
    .action(
      action(async (name: string, o: { index?: string; wait?: string; count?: string }, c: Command) => {
        const client = globals(c).client();
        let index = o.index !== undefined ? Number(o.index) : undefined;
        let left = o.count !== undefined ? Number(o.count) : Infinity;
        const wait = o.wait ?? '5m';
        let backoff = 0;
        while (left > 0) {
          const q = index === undefined ? '' : `?index=${index}&wait=${enc(wait)}`;
          const started = Date.now();
          let res;
          try {
            res = await client.raw<Service>('GET', `/api/v1/services/${enc(name)}${q}`);
          } catch (e) {
            // The central restarting or unreachable: retry with backoff (1 s doubling to 30 s), as Consul watches do.
            backoff = Math.min(backoff ? backoff * 2 : 1000, 30_000);
            process.stderr.write(`warning: ${(e as Error).message}; retrying in ${backoff / 1000}s\n`);
            await new Promise((r) => setTimeout(r, backoff));
            continue;
          }
          backoff = 0;
          if (res.status !== 200) {
            const e = (res.body as unknown as { error?: { code?: string; message?: string } })?.error;
            throw new ApiClientError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? `HTTP ${res.status}`);
          }
          const next = Number(res.headers['x-underlay-index'] ?? res.body.modifyIndex);
          // Consul's rule: an index that goes backwards (a restarted central) starts over.
          if (index !== undefined && next < index) index = 0;
          if (index === undefined || next > index) {
            process.stdout.write(JSON.stringify(res.body) + '\n');
            left--;
          }
          // An unchanged index that came back early (a central shutting down): do not spin.
          if (index !== undefined && next === index && Date.now() - started < 1000) await new Promise((r) => setTimeout(r, 1000));
          index = next;
        }
      }),
    );

  svc
    .command('wait <name>')
    .description(`wait until the service has N passing members; exit 0, or ${WAIT_TIMEOUT_EXIT} at the timeout`)
    .option('--passing <n>', 'passing members needed', '1')
    .option('--timeout <duration>', 'give up after this long', '5m')
    .action(
      action(async (name: string, o: { passing: string; timeout: string }, c: Command) => {
        const g = globals(c);
        const client = g.client();
        const wanted = Number(o.passing);
        if (!Number.isInteger(wanted) || wanted < 1) throw new Error(`--passing must be a positive integer (got "${o.passing}")`);
        const total = parseDuration(o.timeout);
        const deadline = Date.now() + total;
        let last: { passing?: number } = {};
        for (;;) {
          const left = Math.max(0, deadline - Date.now());
          const chunk = Math.min(left, MAX_REQUEST_MS);
          const res = await client.raw<WaitResult | { error: { message: string; details?: { passing?: number } } }>(
            'GET',
            `/api/v1/services/${enc(name)}/wait?passing=${wanted}&timeout=${chunk}ms`,
          );
          if (res.status === 200) {
            const r = res.body as WaitResult;
            if (g.format === 'json') print(r, 'json');
            else process.stdout.write(`service ${name}: ${r.passing} passing (wanted ${wanted})\n`);
            return;
          }
          if (res.status !== 408) {
            const e = (res.body as { error?: { code?: string; message?: string } }).error;
            throw new ApiClientError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? `HTTP ${res.status}`);
          }
          last = (res.body as { error: { details?: { passing?: number } } }).error.details ?? {};
          if (Date.now() >= deadline) break;
        }
        process.stderr.write(`timed out: service "${name}" has ${last.passing ?? 0} of ${wanted} passing member(s) after ${o.timeout}\n`);
        process.exitCode = WAIT_TIMEOUT_EXIT;
      }),
    );
}
