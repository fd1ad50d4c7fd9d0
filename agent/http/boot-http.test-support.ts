import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import { signTask } from '../../shared/envelope/envelope.js';
import { silentLogger } from '../../shared/log/logger.js';
import { DesiredState } from '../../shared/protocol/desired-state.js';
import { Outbox } from '../link/outbox.js';
import { DesiredStateCache } from '../state/desired-state-cache.js';
import { RecordLog } from '../state/record-log.js';
import { TaskExecutor } from '../tasks/executor.js';
import { MachineQueue } from '../tasks/machine-queue.js';
import { TaskLog } from '../tasks/task-log.js';
import { createBootApp, type BootHttpOptions } from './app.js';
import { BootSessions } from './boot-sessions.js';
import { OsCredentials } from './os-credentials.js';
import { MachineIds } from './machine-id.js';

export const AGENT_URL = 'http://198.18.0.1:8080';

/**
 * The agent's HTTP boot surface over a real durable runtime in `dir` (outbox, task log, machine queue,
 * desired-state cache, boot sessions: the classes startAgent wires), for in-process tests. The outbox
 * is what the link forwards to the central: a message not in it never reaches the central.
 */
export async function bootRuntime(
  dir: string,
  o: { state: unknown; rates?: BootHttpOptions['rates']; openSecret?: (v: unknown) => unknown; emitEvent?: BootHttpOptions['rt']['emitEvent']; leasedAddresses?: BootHttpOptions['leasedAddresses']; localArtifact?: BootHttpOptions['localArtifact']; allowUnpinned?: boolean },
) {
  await sodium.ready;
  const keys = sodium.crypto_sign_keypair();
  const outbox = new Outbox(join(dir, 'outbox.jsonl'));
  await outbox.open();
  const queue = new MachineQueue(join(dir, 'mq.jsonl'));
  await queue.open();
  const taskLog = new TaskLog(join(dir, 'tasks.jsonl'));
  await taskLog.open();
  const rejections = new RecordLog<never>(join(dir, 'rej.jsonl'));
  await rejections.open();
  const cache = new DesiredStateCache(join(dir, 'state.json'), silentLogger);
  await cache.replace(DesiredState.parse(o.state));
  const sessions = new BootSessions(join(dir, 'boot-sessions.jsonl'));
  await sessions.open();
  const osCredentials = new OsCredentials(join(dir, 'os-credentials.jsonl'));
  await osCredentials.open();
  const ids = new MachineIds(randomBytes(32));
  const executor = new TaskExecutor({ me: { agent: 'a1', site: 'rack1' }, signingPublicKey: keys.publicKey, taskLog, outbox, machineQueue: queue, desiredState: cache, rejections, requestState: () => undefined, logger: silentLogger });
  const bootDir = join(dir, 'boot');
  mkdirSync(join(bootDir, 'discovery'), { recursive: true });
  writeFileSync(join(bootDir, 'discovery', 'vmlinuz'), Buffer.alloc(10_000, 7));
  const emitEvent = o.emitEvent ?? ((kind: string, data: unknown, id?: string) => outbox.add({ type: 'event', id: id ?? randomUUID(), kind, data, at: new Date().toISOString() }));
  const app = createBootApp({
    rt: { desiredState: cache, machineQueue: queue, executor, taskLog, outbox, logger: silentLogger, emitEvent },
    sessions,
    osCredentials,
    machineIds: ids,
    agentId: 'a1',
    agent: { httpUrl: AGENT_URL, tftpAddress: '198.18.0.1', pubkey: Buffer.from(keys.publicKey).toString('base64') },
    bootDir,
    ipxeDir: join(dir, 'ipxe'),
    ...(o.rates ? { rates: o.rates } : {}),
    ...(o.openSecret ? { openSecret: o.openSecret } : {}),
    ...(o.leasedAddresses ? { leasedAddresses: o.leasedAddresses } : {}),
    ...(o.localArtifact ? { localArtifact: o.localArtifact } : {}),
    ...(o.allowUnpinned ? { allowUnpinned: true } : {}),
  });
  let seq = 0;
  /** Queues a signed machine task through the executor, as a task from the central would arrive. */
  const queueTask = async (machine: string, script = 'echo hi', kind = 'run-script', payload: unknown = { scriptB64: Buffer.from(script).toString('base64') }) => {
    const env = { v: 1 as const, id: randomUUID(), site: 'rack1', agent: 'a1', seq: ++seq, kind, machine, payload, issuedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 600_000).toISOString() };
    await executor.handle(signTask(env, keys.privateKey));
    return env;
  };
  const events = (kind: string) => outbox.messages().filter((m) => m.type === 'event' && m.kind === kind) as Array<{ kind: string; data: Record<string, unknown> }>;
  const reports = (taskId: string) => outbox.messages().filter((m) => m.type === 'report' && m.taskId === taskId) as Array<{ state: string }>;
  return { app, outbox, queue, taskLog, cache, sessions, osCredentials, ids, keys, bootDir, queueTask, events, reports };
}

export const machine = (id: string, name: string, mac: string, over: Record<string, unknown> = {}) => ({ id, name, macs: [mac], bootenv: 'discovery', state: 'ready', netboot: true, profiles: [], params: {}, ...over });

export const siteState = (machines: unknown[], extra: Record<string, unknown> = {}) => ({ version: 'v1', generatedAt: new Date().toISOString(), site: { name: 'rack1', params: {} }, machines, ...extra });

/** The boot token a rendered iPXE script carries (discovery: underlay.token=; others: /m/<token>/). */
export function tokenIn(script: string): string {
  const m = /underlay\.token=([A-Za-z0-9_-]+)/.exec(script) ?? /\/m\/([A-Za-z0-9_-]+)\//.exec(script);
  if (!m) throw new Error(`no boot token in:\n${script}`);
  return m[1];
}
