import type { Command } from 'commander';
import { createLogger } from '../shared/log/logger.js';
import { parseDuration } from '../shared/util/duration.js';
import { parseCount, parseSize } from '../shared/util/size.js';
import { heartbeatSettings } from '../shared/protocol/heartbeat.js';
import { joinCentral } from './join/join.js';
import { networkInterfaces } from 'node:os';
import { DEFAULT_OUTBOX_LIMITS } from './link/outbox.js';
import { DEFAULT_BMC_TIMING } from './bmc/bmc.js';
import { DEFAULT_POWER_POLL } from './bmc/power-poller.js';
import { startAgent, type AgentRuntime } from './run.js';
import { startBootListeners, type BootListenerOptions, type BootListeners } from './boot/listeners.js';
import { AgentMetrics } from './metrics/agent-metrics.js';
import { DEFAULT_METRICS_LISTEN, listenMetrics, parseMetricsListen } from './metrics/metrics-server.js';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { agentUnit, installAgent } from './install/install.js';
import { EXIT } from '../shared/cli/exit-codes.js';


interface RunFlags {
  state: string;
  central?: string;
  interface?: string;
  address?: string;
  dhcp: string;
  httpPort: string;
  tftpPort: string;
  dhcpPort: string;
  ipxeDir: string;
  bootDir?: string;
  allowUnpinned?: boolean;
  bootTokenTtl: string;
  httpMaxConnections: string;
  httpFileDownloadsPerAddress: string;
  outboxMaxRecords: string;
  outboxMaxBytes: string;
  powerPollInterval: string;
  powerPollConcurrency: string;
  powerPollRefresh: string;
  powerPollMaxBackoff: string;
  bmcTimeout: string;
  bmcRetries: string;
  metricsListen: string;
}

function port(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`--${name} must be a port number (got "${v}")`);
  return n;
}

/** Boot service options from flags; null when neither an interface nor an address is given. */
function bootOptions(f: RunFlags): BootListenerOptions | null {
  if (!['full', 'proxy', 'off'].includes(f.dhcp)) throw new Error(`--dhcp must be full, proxy or off (got "${f.dhcp}")`);
  let address = f.address;
  if (!address && f.interface) {
    address = networkInterfaces()[f.interface]?.find((i) => i.family === 'IPv4')?.address;
    if (!address) throw new Error(`interface ${f.interface} has no IPv4 address that is up; give --address (the agent then waits for the link)`);
  }
  if (!address) return null;
  const dhcpPort = port('dhcp-port', f.dhcpPort);
  return {
    address,
    ...(f.interface ? { interface: f.interface } : {}),
    dhcp: f.dhcp as 'full' | 'proxy' | 'off',
    httpPort: port('http-port', f.httpPort),
    tftpPort: port('tftp-port', f.tftpPort),
    dhcpPort,
    proxyPort: 4011,
    dhcpClientPort: dhcpPort === 67 ? 68 : dhcpPort + 1,
    ipxeDir: f.ipxeDir,
    ...(f.bootDir ? { bootDir: f.bootDir } : {}),
    ...(f.allowUnpinned ? { allowUnpinned: true } : {}),
    bootTokenTtlMs: parseDuration(f.bootTokenTtl),
    httpLimits: { maxConnections: parseCount(f.httpMaxConnections, '--http-max-connections') },
    fileDownloadsPerAddress: parseCount(f.httpFileDownloadsPerAddress, '--http-file-downloads-per-address'),
  };
}

const DEFAULT_STATE = process.env.UNDERLAY_STATE ?? './agent-state';

/** `underlay agent join` and `underlay agent run`. */
export function register(program: Command): void {
  const agent = program.command('agent').description('the site agent (dials out to the central; serves boots on the site)');
  agent
    .command('join')
    .description('join this host to a central as its site agent (once)')
    .option('--central <url>', 'central URL, e.g. https://central.example:8443, or several replicas\' comma-separated (tried in turn; env UNDERLAY_CENTRAL); default: the URLs the join token carries', process.env.UNDERLAY_CENTRAL)
    .option('--state <dir>', 'agent state directory (env UNDERLAY_STATE)', DEFAULT_STATE)
    .option('--name <name>', 'agent name (default: hostname)')
    .option('--force', 'replace an existing identity in the state directory')
    .addHelpText('after', '\n  --token <token>  one-time join token from "underlay token create --role agent-join --site S"\n                   (env UNDERLAY_JOIN_TOKEN); required')
    .action(async (opts: { central?: string; state: string; name?: string; force?: boolean }, cmd: Command) => {
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
    .command('install')
    .description('install this host as a site agent under systemd: write the unit and its settings, join, enable and start it')
    .option('--central <url>', "central URL(s), comma-separated (env UNDERLAY_CENTRAL); default: the URLs the join token carries", process.env.UNDERLAY_CENTRAL)
    .option('--root <dir>', 'install into this file-system root instead of / (an image, a test; with --no-start)', '/')
    .option('--no-start', 'write and join, but do not enable or start the unit')
    .option('--name <name>', 'agent name (default: hostname)')
    .option('--force', 'replace an existing identity in the state directory')
    .option('--interface <if>', 'provisioning interface (UNDERLAY_INTERFACE in /etc/default/underlay-agent)')
    .option('--address <ip>', "the agent's address on the provisioning network (UNDERLAY_ADDRESS)")
    .option('--dhcp <mode>', 'full | proxy | off (UNDERLAY_DHCP)')
    .option('--print-unit', 'only print the unit this command writes')
    .addHelpText('after', '\n  --token <token>  one-time join token (env UNDERLAY_JOIN_TOKEN); required\nExit code 6 when systemd is not running here: the unit and the joined state are left in place.')
    .action(async (opts: { central?: string; root: string; start: boolean; name?: string; force?: boolean; interface?: string; address?: string; dhcp?: string; printUnit?: boolean }, cmd: Command) => {
      const cliPath = fileURLToPath(new URL('../shared/cli/underlay.js', import.meta.url));
      if (opts.printUnit) {
        process.stdout.write(agentUnit(cliPath));
        return;
      }
      try {
        const token = cmd.optsWithGlobals<{ token?: string }>().token ?? process.env.UNDERLAY_JOIN_TOKEN;
        if (!token) throw new Error('--token is required: a join token from "underlay token create --role agent-join --site S"');
        if (opts.dhcp && !['full', 'proxy', 'off'].includes(opts.dhcp)) throw new Error(`--dhcp must be full, proxy or off (got "${opts.dhcp}")`);
        const env: Record<string, string> = {
          ...(opts.central ? { UNDERLAY_CENTRAL: opts.central } : {}),
          ...(opts.interface ? { UNDERLAY_INTERFACE: opts.interface } : {}),
          ...(opts.address ? { UNDERLAY_ADDRESS: opts.address } : {}),
          ...(opts.dhcp ? { UNDERLAY_DHCP: opts.dhcp } : {}),
        };
        const r = await installAgent({ central: opts.central, token, root: opts.root, start: opts.start, name: opts.name, force: opts.force, env, cliPath, log: (l) => process.stdout.write(`${l}\n`) });
        if (r.started) process.stdout.write('started: systemctl status underlay-agent; journalctl -u underlay-agent -f\n');
        else {
          process.stdout.write(`not started: ${r.reason}\nthe unit and the joined state are in place; start it with "systemctl enable --now underlay-agent" where systemd runs\n`);
          if (r.noSystemd) process.exitCode = EXIT.UNAVAILABLE;
        }
      } catch (e) {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exitCode = EXIT.ERROR;
      }
    });
  agent
    .command('run')
    .description('run the agent: link to the central, serve the site')
    .option('--state <dir>', 'agent state directory (env UNDERLAY_STATE)', DEFAULT_STATE)
    .option('--central <url>', 'override the central URL(s) recorded at join; several replicas comma-separated (env UNDERLAY_CENTRAL)', process.env.UNDERLAY_CENTRAL)
    .option('--interface <if>', 'provisioning interface (env UNDERLAY_INTERFACE)', process.env.UNDERLAY_INTERFACE)
    .option('--address <ip>', "the agent's address on the provisioning network; default: the interface's IPv4 (env UNDERLAY_ADDRESS)", process.env.UNDERLAY_ADDRESS)
    .option('--dhcp <mode>', 'full | proxy | off (env UNDERLAY_DHCP)', process.env.UNDERLAY_DHCP ?? 'full')
    .option('--http-port <port>', 'HTTP boot port (env UNDERLAY_HTTP_PORT)', process.env.UNDERLAY_HTTP_PORT ?? '8080')
    .option('--tftp-port <port>', 'TFTP port (env UNDERLAY_TFTP_PORT)', process.env.UNDERLAY_TFTP_PORT ?? '69')
    .option('--dhcp-port <port>', 'DHCP server port (env UNDERLAY_DHCP_PORT)', process.env.UNDERLAY_DHCP_PORT ?? '67')
    .option('--ipxe-dir <dir>', "where the iPXE binaries are (Debian's ipxe package) (env UNDERLAY_IPXE_DIR)", process.env.UNDERLAY_IPXE_DIR ?? '/usr/lib/ipxe')
    .option('--boot-dir <dir>', 'boot artifacts served at /files/ (default <state>/boot) (env UNDERLAY_BOOT_DIR)', process.env.UNDERLAY_BOOT_DIR)
    .option(
      '--allow-unpinned',
      'send machines to upstream kernel/initrd URLs that pin no sha256 and are not held here (default: refused, naming the URL) (env UNDERLAY_ALLOW_UNPINNED=1)',
      process.env.UNDERLAY_ALLOW_UNPINNED === '1' || process.env.UNDERLAY_ALLOW_UNPINNED === 'true',
    )
    .option('--boot-token-ttl <duration>', 'how long a boot script\'s single-use boot token may be claimed (env UNDERLAY_BOOT_TOKEN_TTL)', process.env.UNDERLAY_BOOT_TOKEN_TTL ?? '15m')
    .option('--http-max-connections <n>', 'open HTTP boot connections at most (env UNDERLAY_HTTP_MAX_CONNECTIONS)', process.env.UNDERLAY_HTTP_MAX_CONNECTIONS ?? '4096')
    .option(
      '--http-file-downloads-per-address <n>',
      'boot-file downloads (/files/*) one client address may run at once, of the 256 served at once; past it 503 + Retry-After (env UNDERLAY_HTTP_FILE_DOWNLOADS_PER_ADDRESS)',
      process.env.UNDERLAY_HTTP_FILE_DOWNLOADS_PER_ADDRESS ?? '64',
    )
    .option('--outbox-max-records <n>', 'unsent reports and events kept at most; past it new events are refused (503) (env UNDERLAY_OUTBOX_MAX_RECORDS)', process.env.UNDERLAY_OUTBOX_MAX_RECORDS ?? String(DEFAULT_OUTBOX_LIMITS.maxRecords))
    .option('--outbox-max-bytes <size>', 'bytes of unsent reports and events kept at most, e.g. 64M (env UNDERLAY_OUTBOX_MAX_BYTES)', process.env.UNDERLAY_OUTBOX_MAX_BYTES ?? String(DEFAULT_OUTBOX_LIMITS.maxBytes))
    .option('--power-poll-interval <duration>', 'how often the BMCs of the site\'s machines are read; 0 turns polling off (env UNDERLAY_POWER_POLL_INTERVAL)', process.env.UNDERLAY_POWER_POLL_INTERVAL ?? '60s')
    .option('--power-poll-concurrency <n>', 'BMCs read at the same time at most (env UNDERLAY_POWER_POLL_CONCURRENCY)', process.env.UNDERLAY_POWER_POLL_CONCURRENCY ?? String(DEFAULT_POWER_POLL.concurrency))
    .option('--power-poll-refresh <duration>', 'an unchanged power reading is sent to the central again after this long (env UNDERLAY_POWER_POLL_REFRESH)', process.env.UNDERLAY_POWER_POLL_REFRESH ?? '30m')
    .option('--power-poll-max-backoff <duration>', 'the longest wait before a BMC that failed (wrong password, unreachable) is read again (env UNDERLAY_POWER_POLL_MAX_BACKOFF)', process.env.UNDERLAY_POWER_POLL_MAX_BACKOFF ?? '1h')
    .option('--bmc-timeout <duration>', 'per-attempt timeout of a BMC operation (env UNDERLAY_BMC_TIMEOUT)', process.env.UNDERLAY_BMC_TIMEOUT ?? '10s')
    .option('--bmc-retries <n>', 'further attempts when a BMC does not answer (never after a refused login) (env UNDERLAY_BMC_RETRIES)', process.env.UNDERLAY_BMC_RETRIES ?? String(DEFAULT_BMC_TIMING.retries))
    .option('--metrics-listen <host:port>', `Prometheus /metrics listen address, or off; keep it off the provisioning network (env UNDERLAY_METRICS_LISTEN)`, process.env.UNDERLAY_METRICS_LISTEN ?? DEFAULT_METRICS_LISTEN)
    .action(async (opts: RunFlags) => {
      const logger = createLogger('agent');
      let rt: AgentRuntime;
      let boot: BootListeners | undefined;
      let metricsServer: Server | undefined;
      try {
        const listeners = bootOptions(opts);
        const metricsAt = parseMetricsListen(opts.metricsListen);
        const outboxLimits = { maxRecords: parseCount(opts.outboxMaxRecords, '--outbox-max-records'), maxBytes: parseSize(opts.outboxMaxBytes) };
        const powerPoll = { intervalMs: parseDuration(opts.powerPollInterval), concurrency: parseCount(opts.powerPollConcurrency, '--power-poll-concurrency'), refreshMs: parseDuration(opts.powerPollRefresh), maxBackoffMs: parseDuration(opts.powerPollMaxBackoff) };
        const bmcTiming = { timeoutMs: parseDuration(opts.bmcTimeout), retries: parseCount(String(Number(opts.bmcRetries) + 1), '--bmc-retries (0 or more)') - 1 };
        rt = await startAgent({ state: opts.state, centralUrl: opts.central, logger, outboxLimits, powerPoll, bmcTiming, ...heartbeatSettings() });
        const metrics = new AgentMetrics({ rt, dhcp: () => boot?.dhcp, tftp: () => boot?.tftp, artifacts: () => boot?.artifacts, subnets: () => boot?.subnets() ?? [] });
        if (metricsAt) metricsServer = await listenMetrics(metrics.registry, metricsAt, logger);
        if (listeners) boot = await startBootListeners(rt, { ...listeners, onHttpRequest: (route, status) => metrics.httpRequest(route, status) });
        else logger.warn('no --interface or --address given: boot services (DHCP, TFTP, HTTP) are off; the agent only links to the central');
      } catch (e) {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exit(1);
      }
      const stop = async () => {
        metricsServer?.close();
        await boot?.stop();
        await rt.stop();
        process.exit(0);
      };
      process.once('SIGTERM', () => void stop());
      process.once('SIGINT', () => void stop());
    });
}
