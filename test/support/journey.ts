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
