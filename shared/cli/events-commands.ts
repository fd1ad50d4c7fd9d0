import type { Command } from 'commander';
import type { EventPage, EventRecord } from '../api/events.js';
import { ApiClientError } from '../client/api-client.js';
import { action, globals } from './context.js';
import { print } from './output.js';

const enc = encodeURIComponent;

function query(o: { object?: string; kind?: string; since?: string; limit?: string }, extra: Record<string, string> = {}): string {
  const p = { ...(o.object ? { object: o.object } : {}), ...(o.kind ? { kind: o.kind } : {}), ...(o.since ? { since: o.since } : {}), ...(o.limit ? { limit: o.limit } : {}), ...extra };
  const s = Object.entries(p).map(([k, v]) => `${k}=${enc(v)}`).join('&');
  return s ? `?${s}` : '';
}

/** One line per record for a terminal: when, kind, who, what. */
function row(e: EventRecord) {
  const who = e.actor ? `${e.actor.tokenName ?? e.actor.tokenId} (${e.actor.role})` : e.agent ? `agent ${e.agent}` : '';
  const what = e.objects?.length ? `${e.method} ${e.objects.join(' ')}` : JSON.stringify(e.data ?? '').slice(0, 120);
  return { at: e.receivedAt ?? e.at, kind: e.kind, site: e.site ?? '', who, what };
}

/** `underlay events list|watch`: the one event stream (agent events and the audit log of API writes). */
export function registerEventCommands(program: Command): void {
  const events = program.command('events').description('the event stream: agent events (leases, DHCP declines, boot-token claims, task rejections …) and the audit log of every API write');
  const filters = (cmd: Command) =>
    cmd
      .option('--object <kind/name>', 'only records about this object, e.g. machine/m1, site/dc1')
      .option('--kind <kind>', 'only this kind, e.g. api-write (the audit log), lease, boot-claim-refused, task-rejected');

  filters(events.command('list'))
    .description('records, oldest first (the newest --limit)')
    .option('--since <duration>', 'only the last DURATION, e.g. 1h, 7d')
    .option('--limit <n>', 'at most this many (default 100, at most 1000)')
    .action(
      action(async (o: { object?: string; kind?: string; since?: string; limit?: string }, c: Command) => {
        const g = globals(c);
        const page = await g.client().call<EventPage>('GET', `/api/v1/events${query(o)}`);
        if (g.format === 'table') {
          print(page.items.map(row), 'table', ['at', 'kind', 'site', 'who', 'what']);
          process.stdout.write(`showing ${page.items.length} of ${page.total}\n`);
        } else print(page.items, g.format);
      }),
    );

  filters(events.command('watch'))
    .description('print each new record as one JSON line as it arrives (long poll); Ctrl-C stops')
    .option('--since <duration>', 'first print the records of the last DURATION')
    .option('--count <n>', 'stop after this many records')
    .action(
      action(async (o: { object?: string; kind?: string; since?: string; count?: string }, c: Command) => {
        const client = globals(c).client();
        let left = o.count !== undefined ? Number(o.count) : Infinity;
        if (!(left > 0)) throw new Error(`--count must be a positive number (got "${o.count}")`);
        const emit = (items: EventRecord[]) => {
          for (const e of items.slice(0, left)) process.stdout.write(JSON.stringify(e) + '\n');
          left -= Math.min(items.length, left);
        };
        // Where the stream is now (and, with --since, what came before).
        const start = await client.call<EventPage>('GET', `/api/v1/events${query({ ...o, limit: o.since ? '1000' : '0' })}`);
        emit(start.items);
        let after = start.next;
        let backoff = 0;
        while (left > 0) {
          let page: EventPage;
          try {
            page = await client.call<EventPage>('GET', `/api/v1/events${query({ object: o.object, kind: o.kind }, { after, wait: '5m', limit: '1000' })}`);
          } catch (e) {
            if (e instanceof ApiClientError) throw e; // refused (token, query): retrying will not help
            // The central restarting or unreachable: retry with backoff (1 s doubling to 30 s).
            backoff = Math.min(backoff ? backoff * 2 : 1000, 30_000);
            process.stderr.write(`warning: ${(e as Error).message}; retrying in ${backoff / 1000}s\n`);
            await new Promise((r) => setTimeout(r, backoff));
            continue;
          }
          backoff = 0;
          emit(page.items);
          after = page.next;
        }
      }),
    );
}
