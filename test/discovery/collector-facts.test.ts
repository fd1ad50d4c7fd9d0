import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFacts } from '../../shared/api/facts.js';
import { REPO } from '../central/support.js';

/**
 * The facts schema against the real collector: images/discovery/collect.sh run on this host with
 * `--print` (it reads /sys and /proc only, posts nothing), outside the discovery image. The QEMU suite
 * (discovery.test.ts) checks the same script inside the image.
 */
describe('discovery collector output and the facts schema', () => {
  it('collect.sh --print on this host produces facts the schema accepts unchanged', () => {
    const dir = mkdtempSync(join(tmpdir(), 'underlay-collect-'));
    try {
      const cmdline = join(dir, 'cmdline');
      writeFileSync(cmdline, 'quiet underlay.mac=52-54-00-12-34-56\n');
      const r = spawnSync('sh', [join(REPO, 'images/discovery/collect.sh'), '--print'], {
        env: { ...process.env, UNDERLAY_LIB: join(REPO, 'images/discovery/lib.sh'), UNDERLAY_STATE: join(dir, 'state'), UNDERLAY_CMDLINE_FILE: cmdline, UNDERLAY_NO_CONSOLE: '1' },
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const facts = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(Object.keys(facts)).toEqual(expect.arrayContaining(['system', 'firmware', 'cpu', 'memory', 'disks', 'nics', 'bootMac']));
      expect(facts.bootMac).toBe('52:54:00:12:34:56');
      expect(parseFacts(facts)).toEqual(facts);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
