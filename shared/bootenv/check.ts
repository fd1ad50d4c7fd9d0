import { TemplateEngine } from '../render/engine.js';
import type { BootEnv } from './schema.js';

/**
 * Parses every template of a boot environment (bootParams, ipxe, files): Liquid syntax and known
 * filters. Returns one problem per broken template, each naming it (`<bootenv>/<template>: reason`).
 * For the central to call before it stores a boot environment; the library loader calls it too.
 */
export function checkBootEnvTemplates(env: BootEnv, engineOrSnippets?: TemplateEngine | Record<string, string>): string[] {
  const engine = engineOrSnippets instanceof TemplateEngine ? engineOrSnippets : new TemplateEngine({ snippets: engineOrSnippets });
  const problems: string[] = [];
  const sources: Array<[string, string]> = [[`${env.name}/bootParams`, env.bootParams]];
  if (env.ipxe !== undefined) sources.push([`${env.name}/ipxe`, env.ipxe]);
  for (const t of env.templates) sources.push([`${env.name}/${t.name}`, t.template]);
  for (const [name, src] of sources) {
    try {
      engine.check(name, src);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}
