import type { Command } from 'commander';
import { createLogger } from '../shared/log/logger.js';
import { joinCentral } from './join/join.js';
import { startAgent } from './run.js';

const DEFAULT_STATE = process.env.UNDERLAY_STATE ?? './agent-state';

/** `underlay agent join` and `underlay agent run`. */
export function register(program: Command): void {
  const agent = program.command('agent').description('the site agent (dials out to the central; serves boots on the site)');
  agent
    .command('join')
    .description('join this host to a central as its site agent (once)')
    .requiredOption('--central <url>', 'central URL, e.g. https://central.example:8443 (env UNDERLAY_CENTRAL)', process.env.UNDERLAY_CENTRAL)
    .option('--state <dir>', 'agent state directory (env UNDERLAY_STATE)', DEFAULT_STATE)
    .option('--name <name>', 'agent name (default: hostname)')
    .option('--force', 'replace an existing identity in the state directory')
    .addHelpText('after', '\n  --token <token>  one-time join token from "underlay token create --role agent-join --site S"\n                   (env UNDERLAY_JOIN_TOKEN); required')
    .action(async (opts: { central: string; state: string; name?: string; force?: boolean }, cmd: Command) => {
      try {
        // --token is the root command's option (shared with every API command), so read it from there.
        const token = cmd.optsWithGlobals<{ token?: string }>().token ?? process.env.UNDERLAY_JOIN_TOKEN;
        if (!token) throw new Error('--token is required: a join token from "underlay token create --role agent-join --site S"');
        const id = await joinCentral({ ...opts, token });
        process.stdout.write(`joined: agent ${id.agentId} at site ${id.site}; identity in ${opts.state}\nnext: underlay agent run --state ${opts.state}\n`);
      } catch (e) {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });
  agent
    .command('run')
    .description('run the agent: link to the central, serve the site')
    .option('--state <dir>', 'agent state directory (env UNDERLAY_STATE)', DEFAULT_STATE)
    .option('--central <url>', 'override the central URL recorded at join (env UNDERLAY_CENTRAL)', process.env.UNDERLAY_CENTRAL)
    .action(async (opts: { state: string; central?: string }) => {
      const logger = createLogger('agent');
      let rt;
      try {
        rt = await startAgent({ state: opts.state, centralUrl: opts.central, logger });
      } catch (e) {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exit(1);
      }
      const stop = async () => {
        await rt!.stop();
        process.exit(0);
      };
      process.once('SIGTERM', () => void stop());
      process.once('SIGINT', () => void stop());
    });
}
