import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadBootenvLibrary } from '../bootenv/library.js';
import { ApiClientError } from '../client/api-client.js';
import { parseDuration } from '../util/duration.js';
import { action, globals } from './context.js';
import { registerObjectCommands } from './objects.js';
import { print, printPage } from './output.js';

function subnetBody(b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...b };
  if (typeof out.range === 'string') {
    const [start, end] = out.range.split('-').map((s) => s.trim());
    if (!start || !end) throw new Error('--range must look like 198.18.0.100-198.18.0.200');
    out.range = { start, end };
  }
  if (typeof out.dns === 'string') out.dns = out.dns.split(',').map((s) => s.trim()).filter(Boolean);
  if (typeof out.leaseTime === 'string') {
    out.leaseTimeSec = Math.round(parseDuration(out.leaseTime) / 1000);
    delete out.leaseTime;
  }
  return out;
}

/** subnets, reservations, leases, bootenvs (with import), templates. */
export function registerBootCommands(program: Command): void {
  registerObjectCommands(program, {
    noun: 'subnets',
    singular: 'subnet',
    named: false,
    columns: ['name', 'site', 'cidr', 'range', 'gateway', 'dns', 'leaseTimeSec', 'reservationsOnly'],
    fields: [
      { flags: '--site <site>', description: 'site', field: 'site' },
      { flags: '--cidr <cidr>', description: 'e.g. 198.18.0.0/24', field: 'cidr' },
      { flags: '--range <start-end>', description: 'dynamic range, e.g. 198.18.0.100-198.18.0.200', field: 'range' },
      { flags: '--gateway <ip>', description: 'router (option 3)', field: 'gateway' },
      { flags: '--dns <ip,…>', description: 'DNS servers (option 6)', field: 'dns' },
      { flags: '--domain <name>', description: 'domain name (option 15)', field: 'domain' },
      { flags: '--lease-time <duration>', description: 'lease time, e.g. 1h (default 1h)', field: 'leaseTime' },
      { flags: '--next-server <ip>', description: 'TFTP server if not the agent', field: 'nextServer' },
      { flags: '--options <json>', description: 'extra options, e.g. \'{"42":"198.18.0.1"}\'', field: 'options', kind: 'json' },
      { flags: '--reservations-only', description: 'answer only reserved MACs', field: 'reservationsOnly', kind: 'bool' },
      { flags: '--ipxe-binary <file>', description: 'UEFI iPXE binary: ipxe.efi or snponly.efi', field: 'ipxeBinary' },
    ],
    filters: [{ flags: '--site <site>', description: 'only this site', query: 'site' }],
    toBody: subnetBody,
  });
  registerObjectCommands(program, {
    noun: 'reservations',
    singular: 'reservation',
    named: false,
    columns: ['site', 'mac', 'address', 'hostname'],
    fields: [
      { flags: '--site <site>', description: 'site', field: 'site' },
      { flags: '--mac <mac>', description: 'client MAC', field: 'mac' },
      { flags: '--address <ip>', description: 'reserved address', field: 'address' },
      { flags: '--hostname <name>', description: 'host name (option 12)', field: 'hostname' },
    ],
    filters: [
      { flags: '--site <site>', description: 'only this site', query: 'site' },
      { flags: '--mac <mac>', description: 'this MAC', query: 'mac' },
    ],
  });
  registerObjectCommands(program, {
    noun: 'templates',
    singular: 'template',
    columns: ['name', 'description'],
    fields: [
      { flags: '--text <text>', description: 'template text (LiquidJS)', field: 'text' },
      { flags: '--description <text>', description: 'free text', field: 'description' },
    ],
  });
  const bootenvs = registerObjectCommands(program, {
    noun: 'bootenvs',
    singular: 'boot environment',
    columns: ['name', 'description', 'os'],
    fields: [{ flags: '--description <text>', description: 'free text', field: 'description' }],
  });
  bootenvs
    .command('import <dir>')
    .description('import a boot environment library (e.g. images/): every <dir>/bootenvs/<name>/bootenv.yaml and the shared snippets')
    .action(
      action(async (dir: string, _o: unknown, c: Command) => {
        const g = globals(c);
        const client = g.client();
        if (!existsSync(join(dir, 'bootenvs'))) throw new Error(`${resolve(dir)} has no bootenvs/ folder (expected the library layout of images/: bootenvs/<name>/bootenv.yaml)`);
        const lib = loadBootenvLibrary(dir);
        const upsert = async (path: string, name: string, body: Record<string, unknown>) => {
          try {
            await client.call('POST', path, body);
            return 'created';
          } catch (e) {
            if (!(e instanceof ApiClientError) || e.status !== 409) throw e;
            await client.call('PATCH', `${path}/${encodeURIComponent(name)}`, body);
            return 'updated';
          }
        };
        const results: { kind: string; name: string; result: string }[] = [];
        for (const [name, text] of Object.entries(lib.snippets)) results.push({ kind: 'template', name, result: await upsert('/api/v1/templates', name, { name, text }) });
        for (const env of lib.bootenvs) results.push({ kind: 'bootenv', name: env.name, result: await upsert('/api/v1/bootenvs', env.name, env as unknown as Record<string, unknown>) });
        print(results, g.format);
      }),
    );
  program
    .command('leases')
    .description('DHCP leases reported by site agents')
    .command('list')
    .option('--site <site>')
    .option('--mac <mac>')
    .option('--state <state>', 'lease|release|decline|expire')
    .action(
      action(async (o: Record<string, string | undefined>, c: Command) => {
        const g = globals(c);
        const q = new URLSearchParams(Object.entries(o).filter(([, v]) => v) as [string, string][]);
        const page = await g.client().call<{ items: unknown[] }>('GET', `/api/v1/leases?${q}`);
        printPage(page, g.format, ['site', 'address', 'mac', 'hostname', 'state', 'expiresAt']);
      }),
    );
}
