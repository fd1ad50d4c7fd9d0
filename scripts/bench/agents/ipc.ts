/** Messages between the agents benchmark (run.ts) and its simulated-agent child processes (sim-agents.ts). */
/** `url`: the central replica this agent links to (default: the start message's). */
export interface SimIdentity { id: string; site: string; cert: string; url?: string }

export type ParentMsg =
  | { type: 'start'; url: string; ca: string; key: string; publicKey: string; sims: SimIdentity[] }
  | { type: 'stats' }
  | { type: 'stop' };

export type ChildMsg =
  | { type: 'ready' }
  | { type: 'connected'; count: number; ms: number }
  | { type: 'failed'; error: string }
  /** Tasks whose `succeeded` report the central acknowledged: [task id, wall-clock ms]. */
  | { type: 'done'; items: [string, number][] }
  | { type: 'stats'; verified: number; rejected: number; cpuMs: number };

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export const nowMs = (): number => performance.timeOrigin + performance.now();
