/**
 * Writes the renderer's golden output (`central/ansible/testdata/inventory-golden.json.gz`): the
 * `--list` body of every golden case, as rendered now. Run only to record an intended change of output:
 *
 *   npm run build && node dist/scripts/bench/inventory/golden.js
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { goldenCases } from '../../../central/ansible/render-fixture.js';
import { renderInventoryBody } from '../../../central/ansible/render.js';
import { fleet } from './fleet.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const dir = join(ROOT, 'central/ansible/testdata');
const out: Record<string, string> = {};
for (const c of goldenCases(fleet)) out[c.name] = renderInventoryBody(c.src, c.opts).bytes.toString('utf8');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'inventory-golden.json.gz'), gzipSync(JSON.stringify(out), { level: 9 }));
console.log(`wrote ${Object.keys(out).length} cases to ${dir}/inventory-golden.json.gz`);
