import { describe, expect, it } from 'vitest';
import { execStartOf } from '../../shared/systemd/unit.js';
import { centralUnit } from './unit.js';

describe("the central's systemd unit", () => {
  const unit = centralUnit('/opt/underlay/dist/shared/cli/underlay.js');
  const lines = unit.split('\n');
  it('serves from its state directory', () => {
    expect(execStartOf(unit).slice(-4)).toEqual(['central', 'serve', '--data', '%S/underlay-central']);
  });
  it("puts glibc's malloc on huge pages, before the settings file (which may override it)", () => {
    const env = lines.indexOf('Environment=GLIBC_TUNABLES=glibc.malloc.hugetlb=1');
    expect(env).toBeGreaterThan(0);
    expect(env).toBeLessThan(lines.findIndex((l) => l.startsWith('EnvironmentFile=')));
  });
});
