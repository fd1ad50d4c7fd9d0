import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliProgram, type CliResult } from '../support/cli-program.js';
import { startInProcessCentral, type InProcessCentral } from '../central/in-process.js';
import { tempDir } from '../central/support.js';

/** `underlay apply -f FILE` (issue 19): dependency order, idempotent, --dry-run changes nothing. */
let dir: string;
let central: InProcessCentral;
let caFile: string;

const cli = (...args: string[]): Promise<CliResult> => runCliProgram({ url: central.url, token: central.adminToken, caFile }, args);

/** Every stored object of the kinds the file holds, with its updatedAt: any write shows here. */
async function snapshot(): Promise<string> {
  const out: unknown[] = [];
  for (const p of ['params', 'sites', 'subnets', 'profiles', 'machines', 'reservations']) out.push((await central.request('GET', `/api/v1/${p}?limit=1000`)).json);
  return JSON.stringify(out);
}

// Machines first and upper-case MACs / a CIDR with host bits: apply orders them and compares normalised values.
const FILE = `
kind: Machine
name: m1
site: dc1
macs: ["52:54:00:AA:00:01"]
profiles: [web]
params: {rack: r1, slot: 4}
---
kind: Reservation
site: dc1
mac: 52:54:00:AA:00:01
address: 198.18.0.50
---
kind: Subnet
site: dc1
cidr: 198.18.0.9/24
range: {start: 198.18.0.100, end: 198.18.0.200}
---
kind: Profile
name: web
params: {role: web}
---
kind: Site
name: dc1
description: first rack
---
kind: Param
name: rack
schema: {type: string}
`;

beforeAll(async () => {
  dir = tempDir('underlay-apply-');
  central = await startInProcessCentral({ dir });
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, central.ca);
  writeFileSync(join(dir, 'fleet.yaml'), FILE);
}, 60_000);
afterAll(async () => {
  await central?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('underlay apply -f', () => {
  it('--dry-run on an empty central changes nothing and says what it would create', async () => {
    const before = await snapshot();
    const r = await cli('apply', '-f', join(dir, 'fleet.yaml'), '--dry-run', '-o', 'table');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('site/dc1 created (dry run)');
    expect(r.stdout).toContain('  + macs: ["52:54:00:AA:00:01"]');
    expect(await snapshot()).toBe(before);
  });
  it('creates every object, dependencies first', async () => {
    const r = await cli('apply', '-f', join(dir, 'fleet.yaml'), '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout).results as { ref: string; action: string }[];
    expect(results.map((x) => `${x.ref} ${x.action}`)).toEqual([
      'param/rack created',
      'site/dc1 created',
      'subnet/dc1/198.18.0.0/24 created',
      'profile/web created',
      'machine/m1 created',
      'reservation/dc1/52:54:00:aa:00:01 created',
    ]);
    const m = (await central.request('GET', '/api/v1/machines/m1')).json;
    expect(m).toMatchObject({ site: 'dc1', macs: ['52:54:00:aa:00:01'], profiles: ['web'], params: { rack: 'r1', slot: 4 } });
  });
  it('a second apply changes nothing (every object unchanged, nothing written)', async () => {
    const before = await snapshot();
    const r = await cli('apply', '-f', join(dir, 'fleet.yaml'), '-o', 'table');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').every((l) => l.endsWith(' unchanged')), r.stdout).toBe(true);
    expect(await snapshot()).toBe(before);
  });
  it('--dry-run of a changed file prints the diff and changes nothing; the real apply then patches only that', async () => {
    writeFileSync(join(dir, 'fleet2.yaml'), FILE.replace('description: first rack', 'description: rack one').replace('slot: 4', 'slot: 5'));
    const before = await snapshot();
    const dry = await cli('apply', '-f', join(dir, 'fleet2.yaml'), '--dry-run', '-o', 'table');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('site/dc1 configured (dry run)\n  - description: "first rack"\n  + description: "rack one"');
    expect(dry.stdout).toContain('machine/m1 configured (dry run)');
    expect(dry.stdout).toContain('profile/web unchanged');
    expect(await snapshot()).toBe(before);
    const real = await cli('apply', '-f', join(dir, 'fleet2.yaml'), '-o', 'table');
    expect(real.code, real.stderr).toBe(0);
    expect((await central.request('GET', '/api/v1/sites/dc1')).json.description).toBe('rack one');
    expect((await central.request('GET', '/api/v1/machines/m1')).json.params).toEqual({ rack: 'r1', slot: 5 });
  });
  it('refuses a file with an unknown kind or a bad document before changing anything', async () => {
    const before = await snapshot();
    writeFileSync(join(dir, 'bad.yaml'), 'kind: Site\nname: dc9\n---\nkind: Spaceship\nname: x\n');
    const r = await cli('apply', '-f', join(dir, 'bad.yaml'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/kind "Spaceship" is not one of/);
    writeFileSync(join(dir, 'bad2.yaml'), 'kind: Site\nname: [unclosed\n');
    expect((await cli('apply', '-f', join(dir, 'bad2.yaml'))).code).not.toBe(0);
    expect(await snapshot()).toBe(before);
  });
  it('takes JSON too (an array of objects)', async () => {
    writeFileSync(join(dir, 'more.json'), JSON.stringify([{ kind: 'Site', name: 'dc2' }, { kind: 'Site', name: 'dc1', description: 'rack one' }]));
    const r = await cli('apply', '-f', join(dir, 'more.json'), '-o', 'table');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('site/dc2 created\nsite/dc1 unchanged\n');
  });
});
