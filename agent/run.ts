import sodium from 'libsodium-wrappers';
import { createLogger, type Logger } from '../shared/log/logger.js';
import type { RejectReason } from '../shared/envelope/envelope.js';
import type { CentralToAgent } from '../shared/protocol/messages.js';
import { CertRenewer } from './link/cert-renewer.js';
import { Link } from './link/link.js';
import { acquireDirLock } from '../shared/fs/dir-lock.js';
import { Outbox, type OutboxLimits } from './link/outbox.js';
import { DesiredStateCache } from './state/desired-state-cache.js';
import { RecordLog } from './state/record-log.js';
import { ensureStateDir, loadIdentity, type AgentIdentity, type StatePaths } from './state/state-dir.js';
import { TaskExecutor } from './tasks/executor.js';
import type { BmcTiming } from './bmc/bmc.js';
import { bmcAccess } from './bmc/connect.js';
import { DEFAULT_POWER_POLL, PowerPoller, type PowerPollerOptions } from './bmc/power-poller.js';
import { secretOpener } from './state/open-secret.js';
import { MachineQueue } from './tasks/machine-queue.js';
import { TaskLog } from './tasks/task-log.js';

export interface AgentOptions {
  state: string;
  logger?: Logger;
  /** Override the central URL recorded at join (e.g. a relay). */
  centralUrl?: string;
  heartbeatMs?: number;
  deadAfterMs?: number;
  /** Bounds of the outbox (defaults: DEFAULT_OUTBOX_LIMITS). */
  outboxLimits?: Partial<OutboxLimits>;
  /** BMC power polling (defaults: DEFAULT_POWER_POLL); `intervalMs: 0` turns it off. */
  powerPoll?: Partial<PowerPollerOptions>;
  /** Per-attempt timeout and retries of BMC operations (default DEFAULT_BMC_TIMING). */
  bmcTiming?: BmcTiming;
}

/** A running agent's parts; boot services (DHCP, TFTP, HTTP) hang off these. */
export interface AgentRuntime {
  identity: AgentIdentity;
  paths: StatePaths;
  link: Link;
  outbox: Outbox;
  desiredState: DesiredStateCache;
  taskLog: TaskLog;
  machineQueue: MachineQueue;
  executor: TaskExecutor;
  signingPublicKey: Uint8Array;
  /** The central this agent talks to (the join-time URL unless overridden). */
  centralUrl: string;
  /** The agent's mTLS material (client key/cert and the pinned central CA). */
  tls: { key: string; cert: string; ca: string };
  sealKey: { publicKey: Uint8Array; privateKey: Uint8Array };
  logger: Logger;
  /** Sends an event to the central through the durable outbox. */
  emitEvent(kind: string, data: unknown, id?: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startAgent(opts: AgentOptions): Promise<AgentRuntime> {
  await sodium.ready;
  const logger = opts.logger ?? createLogger('agent');
  const paths = ensureStateDir(opts.state);
  const { identity, tls, sealKey } = loadIdentity(paths);
  const signingPublicKey = new Uint8Array(Buffer.from(identity.signingPublicKey, 'base64'));
  // One agent per state directory: a second one would interleave writes to the same journals.
  const lock = await acquireDirLock(paths.dir, 'agent');

  const outbox = new Outbox(paths.outbox, { limits: opts.outboxLimits, logger });
  const taskLog = new TaskLog(paths.taskLog, logger);
  const machineQueue = new MachineQueue(paths.machineQueue, logger);
  const rejections = new RecordLog<{ at: string; reason: RejectReason; detail: string; id?: string; seq?: number }>(paths.rejections, logger);
  try {
    await outbox.open();
    await taskLog.open();
    await machineQueue.open();
    await rejections.open();
  } catch (e) {
    await Promise.all([outbox.close(), taskLog.close(), machineQueue.close(), rejections.close()]).catch(() => undefined);
    await lock.release();
    throw e;
  }
  const desiredState = new DesiredStateCache(paths.desiredState, logger);

  let link!: Link;
  const emitEvent = (kind: string, data: unknown, id?: string) => outbox.add({ type: 'event', id: id ?? crypto.randomUUID(), kind, data, at: new Date().toISOString() });
  const openedSealKey = { publicKey: new Uint8Array(Buffer.from(sealKey.publicKey, 'base64')), privateKey: new Uint8Array(Buffer.from(sealKey.privateKey, 'base64')) };
  const bmc = bmcAccess(secretOpener(openedSealKey), opts.bmcTiming);
  const executor = new TaskExecutor({
    me: { agent: identity.agentId, site: identity.site },
    signingPublicKey,
    taskLog,
    outbox,
    machineQueue,
    desiredState,
    rejections,
    requestState: () => link.send({ type: 'state-request' }),
    emitEvent,
    bmc,
    logger,
  });
  const poll = { ...DEFAULT_POWER_POLL, ...opts.powerPoll };
  const powerPoller = poll.intervalMs > 0 ? new PowerPoller({ machines: () => desiredState.current?.machines ?? [], bmc, emitEvent, logger }, poll) : undefined;

  const onMessage = async (msg: CentralToAgent) => {
    if (msg.type === 'state') {
      if (msg.state.site.name !== identity.site) {
        logger.error({ got: msg.state.site.name, mine: identity.site }, 'desired state for another site; ignored');
        return;
      }
      await desiredState.replace(msg.state);
      logger.info({ version: msg.state.version, machines: msg.state.machines.length }, 'desired state updated');
    } else if (msg.type === 'task') {
      await executor.handle(msg.task);
    } else if (msg.type === 'tasks') {
      for (const t of msg.tasks) await executor.handle(t);
    } else if (msg.type === 'cancel') {
      await executor.cancel(msg.taskId);
    } else if (msg.type === 'cert-renewed' || msg.type === 'cert-renew-refused') {
      certRenewer.onAnswer(msg);
    }
  };

  link = new Link({
    centralUrl: opts.centralUrl ?? identity.centralUrl,
    tls,
    outbox,
    logger,
    hello: () => ({ stateVersion: desiredState.version, lastSeq: taskLog.lastSeq }),
    onMessage,
    heartbeatMs: opts.heartbeatMs,
    deadAfterMs: opts.deadAfterMs,
  });
  const certRenewer = new CertRenewer({ agentId: identity.agentId, paths, tls, link, logger });
  certRenewer.start();
  link.start();
  powerPoller?.start();
  logger.info({ agent: identity.agentId, site: identity.site, central: opts.centralUrl ?? identity.centralUrl, outbox: outbox.size }, 'agent started');

  return {
    identity,
    paths,
    link,
    outbox,
    desiredState,
    taskLog,
    machineQueue,
    executor,
    signingPublicKey,
    tls,
    // The URL the link uses now (one of several replicas'); artifact downloads start from it.
    get centralUrl() {
      return link.centralUrl;
    },
    sealKey: openedSealKey,
    logger,
    emitEvent,
    async stop() {
      certRenewer.stop();
      await powerPoller?.stop();
      await link.stop();
      await outbox.close();
      await taskLog.close();
      await machineQueue.close();
      await rejections.close();
      await lock.release();
    },
  };
}
