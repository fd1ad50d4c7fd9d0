import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliProgram, type CliResult } from '../support/cli-program.js';
import { startInProcessCentral, type InProcessCentral } from '../central/in-process.js';
import { tempDir } from '../central/support.js';

/** `machines update` edits params and MACs instead of replacing them (issue 19). */
let dir: string;
let central: InProcessCentral;
let caFile: string;

const cli = (...args: string[]): Promise<CliResult> => runCliProgram({ url: central.url, token: central.adminToken, caFile }, args);
const machine = async (name: string) => (await central.request('GET', `/api/v1/machines/${name}`)).json as { params: Record<string, unknown>; macs: string[] };

beforeAll(async () => {
  dir = tempDir('underlay-update-merge-');
  central = await startInProcessCentral({ dir });
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, central.ca);
  expect((await central.request('POST', '/api/v1/sites', { body: { name: 'dc1' } })).status).toBe(201);
  expect((await central.request('POST', '/api/v1/machines', { body: { name: 'm1', site: 'dc1', macs: ['52:54:00:00:00:01', '52:54:00:00:00:02'], params: { rack: 'r0', zone: 'a', owner: 'ops' } } })).status).toBe(201);
}, 60_000);
afterAll(async () => {
  await central?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('underlay machines update', () => {
  it('--param k=v merges: the other params stay', async () => {
    const r = await cli('machines', 'update', 'm1', '--param', 'rack=r1', '--param', 'slot=4', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    expect((await machine('m1')).params).toEqual({ rack: 'r1', zone: 'a', owner: 'ops', slot: 4 });
  });
  it('--unset-param k removes one param', async () => {
    expect((await cli('machines', 'update', 'm1', '--unset-param', 'owner', '-o', 'json')).code).toBe(0);
    expect((await machine('m1')).params).toEqual({ rack: 'r1', zone: 'a', slot: 4 });
  });
  it('--replace-params sets the whole map, explicitly', async () => {
    expect((await cli('machines', 'update', 'm1', '--replace-params', '{"only":true}', '-o', 'json')).code).toBe(0);
    expect((await machine('m1')).params).toEqual({ only: true });
    const bad = await cli('machines', 'update', 'm1', '--replace-params', '{"a":1}', '--param', 'b=2');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/does not go with --param/);
    expect((await machine('m1')).params).toEqual({ only: true });
  });
  it('--add-mac / --remove-mac edit the list; --replace-macs sets it', async () => {
    expect((await cli('machines', 'update', 'm1', '--add-mac', '52:54:00:00:00:03', '-o', 'json')).code).toBe(0);
    expect((await machine('m1')).macs).toEqual(['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03']);
    expect((await cli('machines', 'update', 'm1', '--remove-mac', '52:54:00:00:00:01', '-o', 'json')).code).toBe(0);
    expect((await machine('m1')).macs).toEqual(['52:54:00:00:00:02', '52:54:00:00:00:03']);
    const missing = await cli('machines', 'update', 'm1', '--remove-mac', '52:54:00:00:00:99');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/has no 52:54:00:00:00:99/);
    expect((await cli('machines', 'update', 'm1', '--replace-macs', '52:54:00:00:00:07', '-o', 'json')).code).toBe(0);
    expect((await machine('m1')).macs).toEqual(['52:54:00:00:00:07']);
  });
  it('a param merge and a field change go in one PATCH', async () => {
    expect((await cli('machines', 'update', 'm1', '--param', 'rack=r2', '--rack', 'r2', '-o', 'json')).code).toBe(0);
    const m = (await machine('m1')) as unknown as { rack: string; params: Record<string, unknown> };
    expect(m.rack).toBe('r2');
    expect(m.params).toEqual({ only: true, rack: 'r2' });
  });
});
