import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliProgram, type CliResult } from '../support/cli-program.js';
import { startInProcessCentral, type InProcessCentral } from '../central/in-process.js';
import { tempDir } from '../central/support.js';

/**
 * `underlay workflows …`, `underlay machines workflow …` and `underlay runs …` (issue 14) against an
 * in-process central: the CLI's own program object, its output and exit codes.
 */
let dir: string;
let central: InProcessCentral;
let caFile: string;

function cli(...args: string[]): Promise<CliResult> {
  return runCliProgram({ url: central.url, token: central.adminToken, caFile }, args);
}

const FILE = `
name: hand-over
description: approve, then done
stages:
  - name: approve
    approval: true
    steps: []
`;

beforeAll(async () => {
  dir = tempDir('underlay-workflows-cli-');
  central = await startInProcessCentral({ dir });
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, central.ca);
  await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } });
  await central.joinAgent('dc1');
  for (const [n, rack] of [[1, 'r1'], [2, 'r1'], [3, 'r2']] as const) {
    expect((await central.request('POST', '/api/v1/machines', { body: { name: `n${n}`, site: 'dc1', rack, macs: [`52:54:00:14:01:0${n}`] } })).status).toBe(201);
  }
}, 60_000);
afterAll(async () => {
  await central?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('underlay workflows and runs', () => {
  it('creates a workflow from a YAML file, refuses a bad one with its path, lists and shows it', async () => {
    const good = join(dir, 'wf.yaml');
    writeFileSync(good, FILE);
    const c = await cli('workflows', 'create', '-f', good, '-o', 'json');
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ name: 'hand-over', stages: [{ name: 'approve', approval: true }] });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, FILE.replace('approval: true', 'approval: true\n    run: rm -rf /'));
    const b = await cli('workflows', 'create', '-f', bad);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/invalid workflow: stages\.0/);
    expect(JSON.parse((await cli('workflows', 'list', '-o', 'json')).stdout).items.map((w: { name: string }) => w.name)).toEqual(['hand-over']);
    expect((await cli('workflows', 'show', 'hand-over', '-o', 'table')).stdout).toContain('approval: true');
  });

  it('starts runs by selector and on one machine; lists them with what they wait for; continue finishes one; watch follows it to the end', async () => {
    const sel = await cli('machines', 'workflow', '--workflow', 'hand-over', '--selector', 'rack=r1', '-o', 'json');
    expect(sel.code, sel.stderr).toBe(0);
    const runs = JSON.parse(sel.stdout).items as { id: string; machineName: string }[];
    expect(runs.map((r) => r.machineName).sort()).toEqual(['n1', 'n2']);
    const one = await cli('machines', 'workflow', 'n3', '--workflow', 'hand-over', '-o', 'json');
    expect(one.code, one.stderr).toBe(0);
    const again = await cli('machines', 'workflow', 'n3', '--workflow', 'hand-over');
    expect(again.code).toBe(5); // 409: one workflow at a time
    expect((await cli('machines', 'workflow', '--workflow', 'hand-over')).stderr).toMatch(/name one machine or give --selector/);
    const list = await cli('runs', 'list', '--workflow', 'hand-over', '-o', 'table');
    expect(list.stdout).toContain('waiting: stage approve: an approval (underlay runs continue RUN)');
    const id = runs[0]!.id;
    const show = await cli('runs', 'show', id, '-o', 'table');
    expect(show.stdout).toMatch(/> stage approve \(waiting for an approval .* since /);
    const cont = await cli('runs', 'continue', id, '-o', 'table');
    expect(cont.code, cont.stderr).toBe(0);
    expect(cont.stdout).toContain(': succeeded');
    const watch = await cli('runs', 'watch', id, '-o', 'json');
    expect(watch.code).toBe(0);
    expect(JSON.parse(watch.stdout).status.state).toBe('succeeded');
    const cancel = await cli('runs', 'cancel', runs[1]!.id);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect((await cli('runs', 'watch', runs[1]!.id)).code).toBe(5); // EXIT.CONFLICT: what was waited for failed
    expect((await cli('runs', 'retry', runs[1]!.id)).code).toBe(5);
  });
});
