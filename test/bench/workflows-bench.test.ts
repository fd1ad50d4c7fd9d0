// The workflows benchmark (scripts/bench/workflows/run.ts) at a tiny size, from the built tree: it must run
// end to end against a real central and simulated agents over mutual TLS and print every figure. The bench
// itself fails when a step's output is not its own machine's rendered script, when a simulated agent
// rejects a task, or when a run passes the gate before the change that opens it.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';

const REPO = resolve(import.meta.dirname, '../..');
const BENCH = join(REPO, 'dist/scripts/bench/workflows/run.js');
const ready = checkPrereqs('workflows benchmark', { files: [BENCH] });

describe.skipIf(!ready)('workflows benchmark, tiny', () => {
  let child: ChildProcess | undefined;
  // A bench that outlives a failed test is stopped (SIGTERM: it stops its central and simulated agents and removes its data).
  afterEach(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });

  it('12 machines × 3 steps over 3 agents: steps/s, step latency, service changes with and without waiting gates, gate open → runs moved on', async () => {
    child = spawn(process.execPath, [BENCH, '--machines', '12', '--agents', '3', '--steps', '3', '--changes', '10', '--procs', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    const code = await new Promise<number | null>((r) => child!.once('exit', r));
    expect(code, `${out}\n${err}`).toBe(0);
    expect(out).toMatch(/12 runs × 3 steps: \d+ steps\/s end to end, all runs succeeded in [\d.]+ s \(load [\d.]+\)/);
    expect(out).toMatch(/10 service changes, 12 runs waiting at a gate on that service: [\d.]+ ms per change, central CPU [\d.]+ ms per change \(load/);
    const summary = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>;
    expect(summary).toMatchObject({ machines: 12, agents: 3, steps: 3, changes: 10 });
    for (const k of ['stepsPerSec', 'stepP50ms', 'stepP99ms', 'runP99ms', 'changeIdleLatencyMs', 'changeWaitingLatencyMs', 'gateOpenToStepsDoneMs', 'gateOpenToRunsSucceededMs']) {
      expect(summary[k], k).toBeGreaterThan(0);
    }
    expect(summary.stepP99ms).toBeGreaterThanOrEqual(summary.stepP50ms);
    expect(summary.gateOpenToRunsSucceededMs).toBeGreaterThanOrEqual(summary.gateOpenToStepsDoneMs);
  }, 120_000);
});
