import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import type { InventoryDocument } from '../api/ansible-inventory.js';
import { ApiClientError, type ClientConfig } from '../client/api-client.js';
import { action, globals } from './context.js';
import { registerObjectCommands } from './objects.js';

/**
 * `underlay inventory --list | --host NAME | --graph`: a drop-in Ansible inventory script. `--list`
 * prints the central's document byte for byte. It keeps the last document and its ETag in a cache
 * file (UNDERLAY_INVENTORY_CACHE: a directory, or "off"; default ~/.cache/underlay) and asks with
 * If-None-Match, so an unchanged inventory costs one 304.
 */

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function get(cfg: ClientConfig, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const u = new URL(cfg.url + path);
  const h: Record<string, string> = { accept: 'application/json', ...headers };
  if (cfg.token) h.authorization = `Bearer ${cfg.token}`;
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(u, { method: 'GET', headers: h, ...(u.protocol === 'https:' && cfg.ca ? { ca: cfg.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') reject(new Error(`cannot reach the central at ${cfg.url} (connection refused); is it running?`));
      else if (e.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || e.code === 'SELF_SIGNED_CERT_IN_CHAIN' || e.code === 'DEPTH_ZERO_SELF_SIGNED_CERT') {
        reject(new Error(`the central's certificate is not trusted: set UNDERLAY_CA to its CA (the central's data dir has ca.pem) [${e.code}]`));
      } else reject(e);
    });
    req.end();
  });
}

function failure(res: RawResponse): ApiClientError {
  let e: { code?: string; message?: string; details?: unknown } | undefined;
  try {
    e = (JSON.parse(res.text) as { error?: typeof e }).error;
  } catch {
    /* not JSON */
  }
  return new ApiClientError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? `HTTP ${res.status}`, e?.details);
}

function cacheDir(env = process.env): string | null {
  const v = env.UNDERLAY_INVENTORY_CACHE;
  if (v === 'off' || v === '0' || v === 'false') return null;
  if (v) return v;
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'underlay');
}

/** GET /api/v1/inventory with the ETag cache. Returns the exact body. */
export async function fetchInventory(cfg: ClientConfig, query: URLSearchParams, env = process.env): Promise<{ body: string; cached: boolean }> {
  const qs = query.toString();
  const path = `/api/v1/inventory${qs ? `?${qs}` : ''}`;
  const dir = cacheDir(env);
  const file = dir ? join(dir, `inventory-${createHash('sha256').update(`${cfg.url}\0${cfg.token ?? ''}\0${path}`).digest('hex').slice(0, 24)}.json`) : null;
  let cached: { etag: string; body: string } | null = null;
  if (file) {
    try {
      cached = JSON.parse(readFileSync(file, 'utf8')) as { etag: string; body: string };
    } catch {
      cached = null;
    }
  }
  const res = await get(cfg, path, cached ? { 'if-none-match': cached.etag } : {});
  if (res.status === 304 && cached) return { body: cached.body, cached: true };
  if (res.status !== 200) throw failure(res);
  const etag = res.headers.etag;
  if (file && dir && typeof etag === 'string') {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ etag, body: res.text }), { mode: 0o600 });
      renameSync(tmp, file);
    } catch {
      // A cache we cannot write only costs the next run a full download.
    }
  }
  return { body: res.text, cached: false };
}

/** `ansible-inventory --graph` layout of a `--list` document, starting at `root`. */
export function formatGraph(doc: InventoryDocument, root = 'all'): string {
  if (!doc[root]) throw new Error(`no group "${root}" in the inventory`);
  const lines: string[] = [];
  const name = (text: string, depth: number) => (depth ? '  |'.repeat(depth) + '--' + text : text);
  const walk = (g: string, depth: number, seen: Set<string>) => {
    lines.push(name(`@${g}:`, depth));
    const group = doc[g] ?? {};
    if (seen.has(g)) return;
    const next = new Set(seen).add(g);
    for (const kid of group.children ?? []) walk(kid, depth + 1, next);
    if (g !== 'all') for (const h of group.hosts ?? []) lines.push(name(h, depth + 1));
  };
  walk(root, 0, new Set());
  return lines.join('\n');
}

export function registerAnsibleInventoryCommands(program: Command): void {
  const cmd = program
    .command('inventory')
    .description('Ansible dynamic inventory script: --list, --host NAME, --graph (reads UNDERLAY_URL, UNDERLAY_TOKEN, UNDERLAY_CA)')
    .addOption(new Option('--list', 'print the whole inventory (Ansible --list JSON, with _meta.hostvars)').conflicts(['host', 'graph']))
    .addOption(new Option('--host <name>', "print one host's variables").conflicts(['graph']))
    .option('--graph [group]', 'print the group tree, like ansible-inventory --graph')
    .option('--prefix <prefix>', 'prefix every group name (default: the central default)')
    .option('--site <site>', 'only machines of this site')
    .option('--group <group>', 'only hosts of this group');
  cmd.action(
    action(async (opts: { list?: boolean; host?: string; graph?: string | boolean; prefix?: string; site?: string; group?: string }, c: Command) => {
      const cfg = globals(c).client().config;
      if (opts.host !== undefined) {
        const res = await get(cfg, `/api/v1/inventory/hosts/${encodeURIComponent(opts.host)}`);
        if (res.status !== 200) throw failure(res);
        process.stdout.write(res.text + '\n');
        return;
      }
      const q = new URLSearchParams();
      if (opts.prefix !== undefined) q.set('prefix', opts.prefix);
      if (opts.site !== undefined) q.set('site', opts.site);
      if (opts.group !== undefined) q.set('group', opts.group);
      if (opts.graph !== undefined) {
        const { body } = await fetchInventory(cfg, q);
        process.stdout.write(formatGraph(JSON.parse(body) as InventoryDocument, typeof opts.graph === 'string' ? opts.graph : 'all') + '\n');
        return;
      }
      if (!opts.list) throw new Error('give --list, --host NAME or --graph');
      const { body } = await fetchInventory(cfg, q);
      process.stdout.write(body + '\n');
    }),
  );

  registerObjectCommands(program, {
    noun: 'group-rules',
    singular: 'group rule',
    columns: ['name', 'kind', 'key', 'prefix', 'group', 'when'],
    fields: [
      { flags: '--kind <kind>', description: 'keyed (a group per value of --key) or condition (hosts matching --when join --group)', field: 'kind' },
      { flags: '--key <path>', description: 'keyed: a path like facts.cpu.model or params.role', field: 'key' },
      { flags: '--prefix <prefix>', description: 'keyed: group-name prefix (default: the rule name; "" for none)', field: 'prefix' },
      { flags: '--group <group>', description: 'condition: the group hosts join', field: 'group' },
      { flags: '--when <json>', description: 'condition: {"path":"facts.memory.totalBytes","op":"gte","value":274877906944} (or a list: all must hold)', field: 'when', kind: 'json' },
      { flags: '--description <text>', description: 'free text', field: 'description' },
    ],
  });
}
