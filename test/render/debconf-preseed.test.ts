import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRendered } from '../../shared/render/validate.js';
import { checkPrereqs } from '../support/require.js';
import { renderLibraryFiles, tempDir } from './helpers.js';

const ready = checkPrereqs('debconf preseed check', { commands: ['debconf-set-selections'] });

function debconfCheck(file: string): { ok: boolean; output: string } {
  const r = spawnSync('debconf-set-selections', ['--checkonly', file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!ready)('rendered preseeds pass `debconf-set-selections --checkonly`', () => {
  const tmp = tempDir('underlay-preseed-');
  afterAll(() => tmp.cleanup());
  const cases = renderLibraryFiles('preseed');

  it('the library renders preseeds to check', () => expect(cases.length).toBeGreaterThanOrEqual(4));

  it.each(cases.map((c, i) => [c.label, c, i] as const))('%s', (_label, c, i) => {
    const r = debconfCheck(tmp.file(`preseed-${i}.cfg`, c.body));
    expect(r.output).toBe('');
    expect(r.ok).toBe(true);
  });

  it('debconf and our validator agree on a malformed line', () => {
    const body = 'd-i netcfg/get_hostname\n';
    expect(debconfCheck(tmp.file('bad.cfg', body)).ok).toBe(false);
    expect(checkRendered('preseed', body)).not.toEqual([]);
  });
});
