import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBootenvLibrary } from '../../shared/bootenv/library.js';
import type { ValidatorKind } from '../../shared/render/validate.js';
import { BootRenderer } from '../../shared/render/bootfiles.js';
import { SAMPLE_PARAMS, sampleContext } from '../../shared/render/sample-context.test-support.js';

export interface RenderedCase {
  label: string;
  body: string;
}

/**
 * Every file of `kind` the images/ library renders, for each platform and for two param sets:
 * everything set (SAMPLE_PARAMS) and only the required params (exercises the `default`/`if` branches).
 */
export function renderLibraryFiles(kind: ValidatorKind): RenderedCase[] {
  const lib = loadBootenvLibrary(new URL('../../images/', import.meta.url).pathname);
  const r = new BootRenderer({ snippets: lib.snippets });
  const out: RenderedCase[] = [];
  for (const env of lib.bootenvs) {
    const required = Object.fromEntries(env.requiredParams.map((p) => [p, SAMPLE_PARAMS[p]]));
    for (const [pname, params] of [['all params', SAMPLE_PARAMS], ['required params only', required]] as const) {
      for (const platform of ['pcbios', 'efi'] as const) {
        const ctx = sampleContext(env, { machine: { platform }, params, snippets: lib.snippets });
        for (const t of env.templates) {
          if (t.validate !== kind) continue;
          out.push({ label: `${env.name}/${t.path} (${platform}, ${pname})`, body: r.file(ctx, t.path).body });
        }
      }
    }
  }
  return out;
}

/** A temp dir removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; file: (name: string, body: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    file: (name, body) => {
      const p = join(dir, name);
      writeFileSync(p, body);
      return p;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
