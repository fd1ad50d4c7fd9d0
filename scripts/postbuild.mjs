// Marks the CLI entry executable after tsc (npm's bin linking expects it) and copies non-TS assets.
import { chmodSync, existsSync } from 'node:fs';
const entry = new URL('../dist/shared/cli/underlay.js', import.meta.url);
if (existsSync(entry)) chmodSync(entry, 0o755);
