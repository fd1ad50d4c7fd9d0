// Our Ignition validator (shared/render/validate.ts, JSON schemas) against the real `ignition-validate`
// from Debian's ignition package, for every spec version that tool knows: they agree on valid and broken
// configs for the version we serve to Debian's ignition (3.3.0); versions we do not serve are refused by
// name, and the library's rendered Ignition configs for 3.3.0 pass the real tool.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRendered, IGNITION_VERSIONS } from '../../shared/render/validate.js';
import { ignitionBinaries } from '../support/ignition.js';
import { checkPrereqs } from '../support/require.js';
import { renderLibraryFiles, tempDir } from './helpers.js';

const ready = checkPrereqs('ignition-validate', { commands: ['apt-get', 'dpkg-deb'] });
/** What Debian's ignition 2.14 knows (its `ignition-validate` accepts exactly these). */
const TOOL_VERSIONS = ['3.0.0', '3.1.0', '3.2.0', '3.3.0', '3.4.0-experimental'];

describe.skipIf(!ready)('Ignition configs: our validator and the real ignition-validate', () => {
  const bins = ready ? ignitionBinaries() : undefined;
  const tmp = tempDir('underlay-ignvalidate-');
  afterAll(() => {
    tmp.cleanup();
    if (bins) rmSync(bins.dir, { recursive: true, force: true });
  });
  const tool = (name: string, doc: unknown) => {
    const r = spawnSync(bins!.validate, [tmp.file(name, typeof doc === 'string' ? doc : JSON.stringify(doc))], { encoding: 'utf8' });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  };
  const valid = (v: string) => ({
    ignition: { version: v },
    storage: { files: [{ path: '/etc/motd', mode: 420, contents: { source: 'data:,hi' } }] },
    systemd: { units: [{ name: 'a.service', enabled: true, contents: '[Service]\nExecStart=/bin/true\n' }] },
  });
  const broken = (v: string) => ({ ignition: { version: v }, storage: { files: 5 } });

  it.each(TOOL_VERSIONS)('spec %s: the tool accepts a valid config and rejects a broken one; we agree or refuse the version', (v) => {
    expect(tool(`valid-${v}`, valid(v)).ok, tool(`valid-${v}`, valid(v)).output).toBe(true);
    expect(tool(`broken-${v}`, broken(v)).ok).toBe(false);
    const ours = { valid: checkRendered('ignition', JSON.stringify(valid(v))), broken: checkRendered('ignition', JSON.stringify(broken(v))) };
    if (IGNITION_VERSIONS.includes(v)) {
      expect(ours.valid).toEqual([]);
      expect(ours.broken.join('; ')).toMatch(/files/);
    } else {
      // A version we cannot check is never served unchecked.
      expect(ours.valid.join('; ')).toMatch(/unsupported ignition.version/);
    }
  });

  it('the tool does not know 3.4.0 and 3.5.0 (newer than Debian’s ignition 2.14); we check them by schema', () => {
    for (const v of ['3.4.0', '3.5.0']) {
      expect(tool(`new-${v}`, valid(v)).ok).toBe(false);
      expect(checkRendered('ignition', JSON.stringify(valid(v)))).toEqual([]);
    }
  });

  it('the library’s 3.3.0 configs (debian-ignition) pass the real tool', () => {
    const cases = renderLibraryFiles('ignition').filter((c) => (JSON.parse(c.body) as { ignition: { version: string } }).ignition.version === '3.3.0');
    expect(cases.length).toBeGreaterThanOrEqual(4); // debian-ignition, 2 platforms x 2 param sets
    for (const [i, c] of cases.entries()) {
      const r = tool(`lib-${i}`, c.body);
      expect(r.ok, `${c.label}: ${r.output}`).toBe(true);
      expect(checkRendered('ignition', c.body), c.label).toEqual([]);
    }
  });
});
