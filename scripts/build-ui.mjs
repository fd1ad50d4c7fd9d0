// Builds the operator console (central/ui/app, Preact) into dist/central/ui/public with esbuild: one
// minified bundle, its stylesheet and the page. Nothing is fetched at run time: the central serves these
// files itself. Run by `npm run build` (and so by `npm install`'s prepare). `--check` also typechecks the app.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const app = `${root}central/ui/app/`;
const out = `${root}dist/central/ui/public/`;

// The app's own tsconfig (DOM types, Preact's JSX): esbuild strips types without checking them.
execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${app}tsconfig.json`], { stdio: 'inherit' });

mkdirSync(out, { recursive: true });
await build({
  entryPoints: [`${app}main.tsx`],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outfile: `${out}app.js`,
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(`${app}index.html`, `${out}index.html`);
copyFileSync(`${app}app.css`, `${out}app.css`);
console.log(`ui: ${out}app.js ${(statSync(`${out}app.js`).size / 1024).toFixed(1)} KiB`);
