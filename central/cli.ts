import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN_FILE } from './auth/admin-token.js';
import { parseToken } from './auth/token-secret.js';
import { ApiClient, resolveClientConfig } from '../shared/client/api-client.js';
import { action, globals, type GlobalOptions } from '../shared/cli/context.js';
import { print } from '../shared/cli/output.js';
import { createLogger } from '../shared/log/logger.js';
import { startCentral } from './server/serve.js';
import { migratePostgres } from './store/postgres/migrate-command.js';
import { DEFAULT_AGENT_CERT_LIFETIME, DEFAULT_SERVER_CERT_LIFETIME } from './server/options.js';
import { centralFeatures } from './features.js';
import { DEFAULT_RETENTION, parseRetention } from './tasks/retention.js';
import { backupCentral, restoreCentral } from './backup/commands.js';
import { registerCentralUnitCommand } from './install/unit.js';


/** `underlay central serve`. Flags override UNDERLAY_* environment variables. */
export function register(program: Command): void {
  const central = program.command('central').description('the central registry');
  registerCentralUnitCommand(central);
  central
    .command('serve')
    .description('serve the central registry API (HTTPS, bearer tokens)')
    .option('--data <dir>', 'data directory (env UNDERLAY_DATA)', process.env.UNDERLAY_DATA ?? './data')
    .option('--store <url>', 'postgres://USER@HOST:PORT/DB shared by central replicas (env UNDERLAY_STORE); default: the embedded store in --data (docs/ha.md)', process.env.UNDERLAY_STORE)
    .option('--listen <host:port>', 'listen address (env UNDERLAY_LISTEN)', process.env.UNDERLAY_LISTEN ?? '127.0.0.1:8443')
    .option('--public-url <url>', 'URL agents and clients use to reach this central (env UNDERLAY_PUBLIC_URL)', process.env.UNDERLAY_PUBLIC_URL)
    .option('--replica-urls <urls>', "every central replica's URL, comma-separated, put in agent join tokens (env UNDERLAY_REPLICA_URLS); default: --public-url", process.env.UNDERLAY_REPLICA_URLS)
    .option('--insecure-http', 'serve plain HTTP (development only; loopback only) (env UNDERLAY_INSECURE_HTTP=1)', process.env.UNDERLAY_INSECURE_HTTP === '1')
    .option('--task-retention <duration>', 'keep finished tasks and agent events this long, e.g. 7d, 12h (env UNDERLAY_TASK_RETENTION)', process.env.UNDERLAY_TASK_RETENTION ?? DEFAULT_RETENTION.age)
    .option('--task-retention-max <count>', 'and at most this many of each, the newest (env UNDERLAY_TASK_RETENTION_MAX)', process.env.UNDERLAY_TASK_RETENTION_MAX ?? DEFAULT_RETENTION.max)
    .option('--agent-cert-lifetime <duration>', 'lifetime of agent client certificates; agents renew after 2/3 of it (env UNDERLAY_AGENT_CERT_LIFETIME)', process.env.UNDERLAY_AGENT_CERT_LIFETIME ?? DEFAULT_AGENT_CERT_LIFETIME)
    .option('--server-cert-lifetime <duration>', 'lifetime of the HTTPS server certificate; renewed after 2/3 of it without a restart (env UNDERLAY_SERVER_CERT_LIFETIME)', process.env.UNDERLAY_SERVER_CERT_LIFETIME ?? DEFAULT_SERVER_CERT_LIFETIME)
    .option('--max-connections <n>', 'open connections accepted at once (env UNDERLAY_MAX_CONNECTIONS)', process.env.UNDERLAY_MAX_CONNECTIONS ?? '4096')
    .action(async ({ taskRetention, taskRetentionMax, maxConnections, replicaUrls, ...opts }: { data: string; store?: string; listen: string; publicUrl?: string; replicaUrls?: string; insecureHttp: boolean; taskRetention: string; taskRetentionMax: string; maxConnections: string; agentCertLifetime: string; serverCertLifetime: string }) => {
      const logger = createLogger('central');
      let running;
      try {
        const retention = parseRetention(taskRetention, taskRetentionMax);
        const replicas = replicaUrls ? replicaUrls.split(/[\s,]+/).filter((u) => u !== '').map((u) => u.replace(/\/+$/, '')) : undefined;
        running = await startCentral({ ...opts, ...(replicas ? { replicaUrls: replicas } : {}), maxConnections: Number(maxConnections), logger, features: centralFeatures({ retention }) });
      } catch (e) {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exit(1);
      }
      process.stdout.write(`central listening on ${running.url} (CA fingerprint sha256:${running.identity.caFingerprint})\n`);
      const stop = (sig: string) => {
        logger.info({ signal: sig }, 'shutting down');
        const hard = setTimeout(() => {
          logger.error('shutdown took longer than 20 s; exiting');
          process.exit(1);
        }, 20_000);
        hard.unref();
        running!.close().then(
          () => process.exit(0),
          (e: Error) => {
            logger.error({ err: e }, 'error during shutdown');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });

  central
    .command('migrate')
    .description('apply the PostgreSQL schema migrations this central needs, then exit (serve also applies them at start, under a lock)')
    .option('--store <url>', 'postgres://USER@HOST:PORT/DB (env UNDERLAY_STORE)', process.env.UNDERLAY_STORE)
    .action(async ({ store }: { store?: string }) => {
      try {
        const { from, to } = await migratePostgres(store);
        process.stdout.write(from === to ? `schema is current (version ${to})\n` : `migrated the schema from version ${from} to ${to}\n`);
      } catch (e) {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exit(1);
      }
    });

  central
    .command('backup <file>')
    .description('write a consistent backup of the running central (every object at one instant, and its CA and signing keys) to FILE (mode 0600)')
    .option('--data <dir>', 'data directory of the running central (env UNDERLAY_DATA): its identity files go into the backup; its admin.token and ca.pem are used to talk to it', process.env.UNDERLAY_DATA ?? './data')
    .addHelpText('after', '\nTalks to the running central (--url / UNDERLAY_URL, default https://127.0.0.1:8443) with an unscoped admin token\n(--token / UNDERLAY_TOKEN, default DATA/admin.token). Works with the file store and PostgreSQL (docs/operations.md).')
    .action(
      action(async (file: string, { data }: { data: string }, c: Command) => {
        const g = c.optsWithGlobals<GlobalOptions>();
        const client = new ApiClient(resolveClientConfig({ url: g.url, token: g.token, ca: g.ca }, { ...process.env, UNDERLAY_DATA: data }));
        const r = await backupCentral(client, data, file);
        process.stderr.write(`backup written to ${file}: ${r.documents} objects, ${r.files.join(', ')}\n`);
      }),
    );

  central
    .command('restore <file>')
    .description('restore a backup into an EMPTY data directory (or empty PostgreSQL database with --store); refuses one that holds anything')
    .option('--data <dir>', 'the new data directory (env UNDERLAY_DATA)', process.env.UNDERLAY_DATA ?? './data')
    .option('--store <url>', 'postgres://… to restore the objects into an empty database instead of the data dir (env UNDERLAY_STORE)', process.env.UNDERLAY_STORE)
    .action(
      action(async (file: string, o: { data: string; store?: string }) => {
        const r = await restoreCentral({ file, dataDir: o.data, storeUrl: o.store, collections: centralFeatures().flatMap((f) => f.collections ?? []) });
        process.stderr.write(`restored ${r.documents} objects and ${r.files.join(', ')} into ${o.store ? 'the database and ' : ''}${o.data}; start it with: underlay central serve --data ${o.data}\n`);
      }),
    );

  central
    .command('rotate-admin-token')
    .description("replace the central's own admin token (DATA/admin.token) while it runs: the old one is revoked, the new one is written there and printed once")
    .option('--data <dir>', 'data directory of the running central (env UNDERLAY_DATA); its admin.token and ca.pem are used', process.env.UNDERLAY_DATA ?? './data')
    .addHelpText('after', '\nTalks to the running central (--url / UNDERLAY_URL, default https://127.0.0.1:8443) with --token / UNDERLAY_TOKEN or,\nby default, the token in DATA/admin.token. The central must be running: it holds the data-dir lock and its tokens.')
    .action(
      action(async ({ data }: { data: string }, c: Command) => {
        const g = c.optsWithGlobals<GlobalOptions>();
        const client = new ApiClient(resolveClientConfig({ url: g.url, token: g.token, ca: g.ca }, { ...process.env, UNDERLAY_DATA: data }));
        const inFile = existsSync(join(data, ADMIN_TOKEN_FILE)) ? readFileSync(join(data, ADMIN_TOKEN_FILE), 'utf8').trim() : '';
        const revoke = parseToken(inFile)?.id ?? null;
        const res = await client.call<{ token: string; id: string; revokedId: string | null }>('POST', '/api/v1/admin-token/rotate', { revoke });
        const format = globals(c).format;
        if (format === 'json') process.stdout.write(JSON.stringify({ token: res.token, id: res.id, revokedId: res.revokedId }) + '\n');
        else if (format === 'yaml') print({ token: res.token, id: res.id, revokedId: res.revokedId }, 'yaml');
        else {
          process.stdout.write(res.token + '\n');
          process.stderr.write(`the new admin token is in ${join(data, 'admin.token')} (mode 0600)${res.revokedId ? `; token ${res.revokedId} was revoked` : ''}\n`);
        }
      }),
    );
}

