// `npm test` after the build: the whole suite in two vitest processes that run side by side
// (test/support/lanes.ts): lane 0 runs the `e2e-qemu` project (files that boot QEMU, one at a time), lane 1
// runs `unit` and `e2e` (no VM, two files at a time). One process cannot do this: vitest 4 runs projects
// with different worker limits one after the other. Each lane's lines are prefixed with its name; at the end
// this prints every file's duration, slowest first, and one closing line for both lanes:
// "tests: N passed, N failed[, N skipped]". Exits non-zero when a lane fails or no test ran.
//
// With arguments (`npm test -- test/dhcp`, `npm test -- --project unit`), it runs one plain `vitest run`
// with them instead.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const args = process.argv.slice(2);

if (args.length > 0) {
  const p = spawn(process.execPath, [vitest, 'run', ...args], { cwd: root, stdio: 'inherit' });
  p.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await lanes();
}

async function lanes() {
  const out = mkdtempSync(join(tmpdir(), 'underlay-test-suite-'));
  const lanes = [
    { name: 'qemu', lane: 0, projects: ['e2e-qemu'] },
    { name: 'main', lane: 1, projects: ['unit', 'e2e'] },
  ];
  const children = [];
  const stop = (sig) => {
    for (const c of children) if (c.exitCode === null && c.pid) c.kill(sig);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const t0 = Date.now();
  const results = await Promise.all(
    lanes.map(
      (l) =>
        new Promise((resolve) => {
          const json = join(out, `${l.name}.json`);
          const argv = [vitest, 'run', ...l.projects.flatMap((p) => ['--project', p]), '--reporter=default', '--reporter=json', `--outputFile.json=${json}`];
          const c = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, UNDERLAY_TEST_LANE: String(l.lane) } });
          children.push(c);
          for (const [stream, sink] of [[c.stdout, process.stdout], [c.stderr, process.stderr]]) {
            createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => sink.write(`[${l.name}] ${line}\n`));
          }
          c.on('exit', (code, signal) => resolve({ ...l, code: code ?? 1, signal, seconds: (Date.now() - t0) / 1000, report: readReport(json) }));
        }),
    ),
  );
  rmSync(out, { recursive: true, force: true });

  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const files = [];
  for (const r of results) {
    if (!r.report) continue;
    passed += r.report.numPassedTests;
    failed += r.report.numFailedTests;
    skipped += r.report.numPendingTests + r.report.numTodoTests;
    for (const f of r.report.testResults) files.push({ lane: r.name, file: relative(root, f.name), seconds: (f.endTime - f.startTime) / 1000, tests: f.assertionResults.length, status: f.status });
  }
  files.sort((a, b) => b.seconds - a.seconds);
  console.log('\nFile durations, slowest first (lane, seconds, tests, file):');
  for (const f of files) console.log(`  ${f.lane.padEnd(4)} ${f.seconds.toFixed(1).padStart(7)} ${String(f.tests).padStart(4)}  ${f.file}${f.status === 'passed' ? '' : `  (${f.status})`}`);
  for (const r of results) console.log(`lane ${r.name} (${r.projects.join(' + ')}): ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code}${r.signal ? `, ${r.signal}` : ''})`} after ${r.seconds.toFixed(0)} s${r.report ? '' : ', no JSON report'}`);
  const ok = results.every((r) => r.code === 0 && r.report) && failed === 0 && passed > 0;
  console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(ok ? 0 : 1);
}

function readReport(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}
