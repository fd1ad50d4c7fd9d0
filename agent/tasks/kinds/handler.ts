import type { z } from 'zod';
import type { Logger } from '../../../shared/log/logger.js';
import type { TaskEnvelope } from '../../../shared/envelope/envelope.js';
import { type AgentTaskKind, TASK_KINDS } from '../../../shared/protocol/task-kinds.js';
import type { BmcAccess } from '../../bmc/connect.js';
import type { DesiredStateCache } from '../../state/desired-state-cache.js';

/** What an agent-side task handler may use. */
export interface KindContext {
  desiredState: DesiredStateCache;
  requestState: () => void;
  /** The site's BMCs (absent in agents started without one, e.g. some tests). */
  bmc?: BmcAccess;
  /** Sends an event to the central through the durable outbox. */
  emitEvent: (kind: string, data: unknown) => Promise<void>;
  logger: Logger;
}

/** A handler's verdict, reported to the central as the task's final state. */
export interface KindOutcome {
  state: 'succeeded' | 'failed';
  output?: string;
  reason?: string;
}

export type KindHandler<K extends AgentTaskKind> = (env: TaskEnvelope, payload: z.output<(typeof TASK_KINDS)[K]['payload']>, ctx: KindContext) => Promise<KindOutcome>;

/** One handler per agent-target kind: a new agent kind without one fails the typecheck here. */
export type AgentKindHandlers = { [K in AgentTaskKind]: KindHandler<K> };

export function unknownMachine(env: TaskEnvelope): KindOutcome {
  return { state: 'failed', reason: 'unknown-machine', output: `machine ${env.machine} is not in this site's state` };
}
