/** Where a failed timer or callback is reported (log it, count it); it must not throw itself. */
export type FailureSink = (where: string, err: unknown) => void;

/**
 * Wraps a timer, interval or event callback so that neither a throw nor a rejected promise escapes it:
 * an uncaught exception there would take the whole process down (issue 11). The failure goes to `sink`.
 */
export function guarded<A extends unknown[]>(where: string, sink: FailureSink, fn: (...args: A) => unknown): (...args: A) => void {
  return (...args: A) => {
    try {
      const r = fn(...args);
      if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(undefined, (e: unknown) => report(sink, where, e));
    } catch (e) {
      report(sink, where, e);
    }
  };
}

function report(sink: FailureSink, where: string, err: unknown): void {
  try {
    sink(where, err);
  } catch {
    /* a failing sink must not turn into the crash it reports */
  }
}
