// Empties dist/ before tsc writes it: a module moved or deleted in the source must not linger in the
// build (tsc never removes what it wrote earlier). The native TFTP addon builds under agent/tftp/native/.
import { rmSync } from 'node:fs';
rmSync(new URL('../dist/', import.meta.url), { recursive: true, force: true });
