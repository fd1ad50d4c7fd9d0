import type { Command } from 'commander';
import { createLogger } from '../shared/log/logger.js';
import { startCentral } from './server/serve.js';
import { StoreLockedError } from './store/types.js';
import { defaultFeatures } from './features.js';
import { DEFAULT_RETENTION, parseRetention } from './tasks/retention.js';

/** `underlay central serve`. Flags override UNDERLAY_* environment variables. */
export function register(program: Command): void {
  const central = program.command('central').description('the central registry');
  central
    .command('serve')
    .description('serve the central registry API (HTTPS, bearer tokens)')
    .option('--data <dir>', 'data directory (env UNDERLAY_DATA)', process.env.UNDERLAY_DATA ?? './data')
    .option('--listen <host:port>', 'listen address (env UNDERLAY_LISTEN)', process.env.UNDERLAY_LISTEN ?? '127.0.0.1:8443')
    .option('--public-url <url>', 'URL agents and clients use to reach this central (env UNDERLAY_PUBLIC_URL)', process.env.UNDERLAY_PUBLIC_URL)
    .option('--insecure-http', 'serve plain HTTP (development only; loopback only) (env UNDERLAY_INSECURE_HTTP=1)', process.env.UNDERLAY_INSECURE_HTTP === '1')
    .option('--task-retention <duration>', 'keep finished tasks and agent events this long, e.g. 7d, 12h (env UNDERLAY_TASK_RETENTION)', process.env.UNDERLAY_TASK_RETENTION ?? DEFAULT_RETENTION.age)
    .option('--task-retention-max <count>', 'and at most this many of each, the newest (env UNDERLAY_TASK_RETENTION_MAX)', process.env.UNDERLAY_TASK_RETENTION_MAX ?? DEFAULT_RETENTION.max)
    .option('--max-connections <n>', 'open connections accepted at once (env UNDERLAY_MAX_CONNECTIONS)', process.env.UNDERLAY_MAX_CONNECTIONS ?? '4096')
    .action(async ({ taskRetention, taskRetentionMax, maxConnections, ...opts }: { data: string; listen: string; publicUrl?: string; insecureHttp: boolean; taskRetention: string; taskRetentionMax: string; maxConnections: string }) => {
      const logger = createLogger('central');
      let running;
      try {
        const retention = parseRetention(taskRetention, taskRetentionMax);
        running = await startCentral({ ...opts, maxConnections: Number(maxConnections), logger, features: await defaultFeatures({ retention }) });
      } catch (e) {
        if (e instanceof StoreLockedError) process.stderr.write(`error: ${e.message}\n`);
        else process.stderr.write(`error: ${(e as Error).message}\n`);
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
}
