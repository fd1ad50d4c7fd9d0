import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { uiTestApp } from '../../central/ui/ui-app.test-support.js';
import { REPO } from '../central/support.js';

/**
 * The OpenAPI document the central serves (every feature registered, as `central serve` builds it) lints
 * clean with @redocly/cli: the recommended rules, plus every operation has a description and every JSON
 * body and response an example that validates against its schema (scripts/openapi/redocly.yaml).
 */
describe('OpenAPI document lint', () => {
  it('redocly lint finds no error and no warning in the served document', async () => {
    const t = await uiTestApp();
    const doc = (await (await t.app.request('/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, { description?: string }>> };
    const ops = Object.values(doc.paths).flatMap((item) => Object.values(item));
    expect(ops.length).toBeGreaterThan(100);
    expect(ops.filter((o) => !o.description)).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), 'underlay-openapi-'));
    try {
      writeFileSync(join(dir, 'openapi.json'), JSON.stringify(doc));
      const r = spawnSync(process.execPath, [join(REPO, 'node_modules/@redocly/cli/bin/cli.js'), 'lint', join(dir, 'openapi.json'), '--config', join(REPO, 'scripts/openapi/redocly.yaml'), '--format=stylish', '--max-problems=50'], {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
        timeout: 120_000,
      });
      const out = `${r.stdout}\n${r.stderr}`;
      expect(r.status, out).toBe(0);
      expect(out).toMatch(/Your API description is valid/);
      expect(out).not.toMatch(/\bwarning\b.*(no-|operation-|info-|rule\/)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
