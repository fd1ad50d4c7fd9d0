// Builds the TFTP data-path addon (agent/tftp/native/) with node-gyp, offline: the Node headers come from
// the running Node's own install prefix (<prefix>/include/node, e.g. /usr/include/node) instead of a
// download. A failed build is not fatal: the TFTP server then uses its JS data path and logs a warning.
// Run by `npm run build` (and so by `npm install`, through `prepare`).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../agent/tftp/native/', import.meta.url));

/** node-gyp: the one npm runs lifecycle scripts with, else the one bundled with npm next to this node. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  return candidates.find((c) => c && existsSync(c));
}

function nodedir() {
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : undefined;
}

const gyp = nodeGyp();
const headers = nodedir();
if (process.env.UNDERLAY_SKIP_NATIVE === '1') {
  console.log('build-native: skipped (UNDERLAY_SKIP_NATIVE=1); the TFTP server will use its JS data path');
} else if (!gyp || !headers) {
  console.warn(`build-native: ${!gyp ? 'node-gyp' : 'Node headers (<prefix>/include/node)'} not found; the TFTP server will use its JS data path`);
} else {
  const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${headers}`, '--loglevel=warn'], { cwd: dir, stdio: 'inherit' });
  if (r.status !== 0) console.warn(`build-native: node-gyp failed (exit ${r.status}); the TFTP server will use its JS data path`);
}
