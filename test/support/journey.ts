/**
 * A journey: named steps that run one after the other in the background, started at construction, so two
 * VMs can walk their lifecycles at the same time in one rack while each step is still reported as its own
 * test (`it('…', () => journey.step('deploy'))`). A step that fails stops its journey: the steps after it
 * fail with "not run". Every step's promise has a handler, so a failure is never an unhandled rejection.
 */
export class Journey {
  private readonly results = new Map<string, Promise<void>>();

  constructor(
    readonly name: string,
    steps: ReadonlyArray<readonly [string, () => Promise<void>]>,
    opts: { onFail?: (step: string, err: unknown) => void } = {},
  ) {
    let failed: string | undefined;
    let prev: Promise<void> = Promise.resolve();
    for (const [step, fn] of steps) {
      if (this.results.has(step)) throw new Error(`journey ${name}: step "${step}" twice`);
      const p = prev.then(async () => {
        if (failed) throw new Error(`${name}: not run, step "${failed}" failed first`);
        try {
          await fn();
        } catch (e) {
          failed = step;
          opts.onFail?.(step, e);
          throw e;
        }
      });
      p.catch(() => undefined);
      this.results.set(step, p);
      prev = p.catch(() => undefined);
    }
  }

  /** Resolves when the step succeeded; rejects with its error (or "not run"). */
  step(name: string): Promise<void> {
    const p = this.results.get(name);
    if (!p) throw new Error(`journey ${this.name} has no step "${name}"`);
    return p;
  }

  /** Settles when every step has run or been skipped. */
  async finished(): Promise<void> {
    await Promise.allSettled([...this.results.values()]);
  }
}

/**
 * A meeting point for `n` journeys: the first `n` calls of arrive() wait for each other, then `fn` runs
 * once and every caller gets its result. abandon() (a journey failed before arriving) releases the others
 * with an error instead of letting them wait forever.
 */
export class Rendezvous<T> {
  private arrived = 0;
  private release!: () => void;
  private abandonWith!: (e: Error) => void;
  private readonly everyone = new Promise<void>((resolve, reject) => {
    this.release = resolve;
    this.abandonWith = reject;
  });
  private result?: Promise<T>;

  constructor(
    private readonly n: number,
    private readonly fn: () => Promise<T>,
  ) {
    this.everyone.catch(() => undefined);
  }

  arrive(): Promise<T> {
    if (++this.arrived === this.n) this.release();
    this.result ??= this.everyone.then(this.fn);
    return this.result;
  }

  abandon(who: string): void {
    this.abandonWith(new Error(`${who} failed before the rendezvous: not run`));
  }
}
