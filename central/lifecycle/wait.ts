import { MACHINES } from '../machines/resources.js';
import type { MachineState } from '../../shared/api/lifecycle.js';
import type { Machine } from '../../shared/api/resources.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { Store } from '../store/types.js';

/** Longest a single wait request blocks (the CLI repeats requests for longer waits). */
export const MAX_WAIT_MS = 10 * 60_000;
export const DEFAULT_WAIT_MS = 5 * 60_000;

export type WaitOutcome =
  | { outcome: 'reached'; machine: Machine }
  | { outcome: 'failed'; machine: Machine }
  | { outcome: 'timeout'; machine: Machine }
  | { outcome: 'gone' };

/**
 * Long poll on one machine: resolves when it is in `state`, when it lands in `failed` instead (unless
 * `failed` is what was asked for), when it is deleted, at the timeout, or when `signal` aborts (the
 * client left, or the central stops).
 */
export function waitForState(store: Store, changes: ChangeFeed, machineId: string, state: MachineState, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
  const judge = (m: Machine | undefined): WaitOutcome | undefined => {
    if (!m) return { outcome: 'gone' };
    if (m.state === state) return { outcome: 'reached', machine: m };
    if (m.state === 'failed') return { outcome: 'failed', machine: m };
    return undefined;
  };
  const now = judge(store.get<Machine>(MACHINES, machineId));
  if (now) return Promise.resolve(now);
  return new Promise((resolve) => {
    const finish = (r: WaitOutcome) => {
      clearTimeout(timer);
      off();
      signal?.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const atTimeout = () => {
      const m = store.get<Machine>(MACHINES, machineId);
      finish(judge(m) ?? (m ? { outcome: 'timeout', machine: m } : { outcome: 'gone' }));
    };
    const onAbort = () => atTimeout();
    const off = changes.on((c) => {
      if (c.collection !== MACHINES || c.id !== machineId) return;
      const r = judge(c.type === 'delete' ? undefined : (c.doc as Machine));
      if (r) finish(r);
    });
    const timer = setTimeout(atTimeout, timeoutMs);
    if (signal?.aborted) atTimeout();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
