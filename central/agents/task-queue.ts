import type { SignedTask } from '../../shared/envelope/envelope.js';
import type { ReportMsg } from '../../shared/protocol/messages.js';
import { serviceKey } from '../api/services.js';

/** A task as the hub delivers it (central/tasks owns the whole document). */
export interface DeliverableTask {
  id: string;
  agent: string;
  seq: number;
  state: string;
  /** Absent once the task was reported on: it is never sent again (central/tasks/slim.ts). */
  signed?: SignedTask;
}

/**
 * What the agent hub needs from the task service: the backlog of an agent, reports, delivery marks and
 * a callback for each new task. central/tasks implements it and its feature provides it under
 * TASK_QUEUE, so agents/ does not import tasks/ (tasks/ reads the agents' collection).
 */
export interface TaskQueue {
  onTask?(task: DeliverableTask): void;
  pendingFor(agentId: string): Promise<DeliverableTask[]>;
  applyReports(agentId: string, reports: ReportMsg[]): Promise<unknown>;
  markDeliveredMany(tasks: DeliverableTask[]): Promise<void>;
}

export const TASK_QUEUE = serviceKey<TaskQueue>('task-queue');
