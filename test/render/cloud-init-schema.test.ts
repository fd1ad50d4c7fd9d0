import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRendered } from '../../shared/render/validate.js';
import { checkPrereqs } from '../support/require.js';
import { renderLibraryFiles, tempDir } from './helpers.js';

const ready = checkPrereqs('cloud-init schema', { commands: ['cloud-init'] });

function cloudInitSchema(file: string): { ok: boolean; output: string } {
  const r = spawnSync('cloud-init', ['schema', '-c', file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!ready)('rendered cloud-configs pass the real `cloud-init schema`', () => {
  const tmp = tempDir('underlay-cloudinit-');
  afterAll(() => tmp.cleanup());
  const cases = renderLibraryFiles('cloud-config');

  it('the library renders cloud-configs to check', () => {
    // ubuntu-cloud and debian-cloud (user-data, vendor-data) and ubuntu (user-data), 2 platforms x 2 param sets.
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases.map((c, i) => [c.label, c, i] as const))('%s', (_label, c, i) => {
    const file = tmp.file(`user-data-${i}`, c.body);
    const r = cloudInitSchema(file);
    expect(r.output).toMatch(/Valid cloud-config/);
    expect(r.ok, r.output).toBe(true);
  });

  it('cloud-init and our validator agree on a broken cloud-config', () => {
    const body = '#cloud-config\nruncmd: 5\nusers: 7\n';
    const r = cloudInitSchema(tmp.file('broken', body));
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/runcmd/);
    expect(checkRendered('cloud-config', body).join('; ')).toMatch(/runcmd/);
  });
});
