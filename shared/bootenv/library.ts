import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { TemplateEngine } from '../render/engine.js';
import { checkBootEnvTemplates } from './check.js';
import { unpinnedUrls } from './pinning.js';
import { BootEnvFileSchema, BootEnvSchema, type BootEnv } from './schema.js';

/** A folder of boot environments as `underlay bootenvs import <dir>` reads it. */
export interface BootenvLibrary {
  bootenvs: BootEnv[];
  /** Shared snippets (`<dir>/bootenvs/_snippets/<name>.liquid`, final newline dropped), usable by every template as `{% include 'name' %}`. */
  snippets: Record<string, string>;
}

/** One or more problems in the library; each names the file. Nothing is returned when any exists. */
export class BootenvLibraryError extends Error {
  override readonly name = 'BootenvLibraryError';
  constructor(readonly problems: string[]) {
    super(`boot environment library is invalid:\n  ${problems.join('\n  ')}`);
  }
}

const SNIPPETS_DIR = '_snippets';
const MAX_FILE = 1024 * 1024;

function issues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '/'}: ${i.message}`).join('; ');
}

/** Reads `file` only if it is a regular file that really lies inside `root` (no symlink or `..` escapes). */
function readInside(root: string, file: string): string {
  const real = realpathSync(file);
  const realRoot = realpathSync(root);
  if (!(real + sep).startsWith(realRoot + sep) || real === realRoot) throw new Error(`${file} lies outside ${root}`);
  const st = statSync(real);
  if (!st.isFile()) throw new Error(`${file} is not a regular file`);
  if (st.size > MAX_FILE) throw new Error(`${file} is larger than ${MAX_FILE} bytes`);
  return readFileSync(real, 'utf8');
}

/**
 * Loads `<dir>/bootenvs/<name>/bootenv.yaml` for every boot environment folder, inlines `templateFile`
 * and `ipxeFile` contents, validates each definition (zod) and parses every template (Liquid syntax,
 * known filters), and loads shared snippets. All problems are collected and thrown together.
 */
export function loadBootenvLibrary(dir: string): BootenvLibrary {
  const root = join(dir, 'bootenvs');
  const problems: string[] = [];
  const snippets: Record<string, string> = {};
  const bootenvs: BootEnv[] = [];

  let entries: string[];
  try {
    entries = readdirSync(root).sort();
  } catch (err) {
    throw new BootenvLibraryError([`${root}: ${(err as Error).message}`]);
  }

  const snippetDir = join(root, SNIPPETS_DIR);
  if (entries.includes(SNIPPETS_DIR)) {
    for (const f of readdirSync(snippetDir).sort()) {
      if (!f.endsWith('.liquid')) continue;
      try {
        // A snippet file's final newline is not part of the snippet, so snippets can be used inline.
        snippets[f.slice(0, -'.liquid'.length)] = readInside(snippetDir, join(snippetDir, f)).replace(/\r?\n$/, '');
      } catch (err) {
        problems.push(`${join(snippetDir, f)}: ${(err as Error).message}`);
      }
    }
  }

  let engine: TemplateEngine;
  try {
    engine = new TemplateEngine({ snippets });
  } catch (err) {
    throw new BootenvLibraryError([`${snippetDir}: ${(err as Error).message}`]);
  }

  for (const name of entries) {
    if (name === SNIPPETS_DIR || name.startsWith('.')) continue;
    const envDir = join(root, name);
    if (!statSync(envDir).isDirectory()) continue;
    const file = join(envDir, 'bootenv.yaml');
    const where = relative(process.cwd(), file) || file;
    try {
      const doc = parseDocument(readInside(envDir, file), { uniqueKeys: true });
      if (doc.errors.length) throw new Error(doc.errors.map((e) => e.message.split('\n')[0]).join('; '));
      const parsed = BootEnvFileSchema.safeParse(doc.toJS());
      if (!parsed.success) throw new Error(issues(parsed.error));
      const { ipxeFile, templates, ...rest } = parsed.data;
      if (rest.name !== name) throw new Error(`name "${rest.name}" must match its folder "${name}"`);
      const env = BootEnvSchema.safeParse({
        ...rest,
        ...(ipxeFile ? { ipxe: readInside(envDir, join(envDir, ipxeFile)) } : {}),
        templates: templates.map(({ templateFile, template, ...t }) => ({
          ...t,
          template: templateFile ? readInside(envDir, join(envDir, templateFile)) : template!,
        })),
      });
      if (!env.success) throw new Error(issues(env.error));
      const broken = checkBootEnvTemplates(env.data, engine);
      if (broken.length) throw new Error(broken.join('; '));
      const unpinned = unpinnedUrls(env.data);
      if (unpinned.length && !env.data.unpinned)
        throw new Error(`${unpinned.map((u) => `${u.field} ${u.url}`).join(', ')}: upstream URL without sha256; pin it, or mark the boot environment "unpinned: true" (fetching it then needs --allow-unpinned)`);
      if (!unpinned.length && env.data.unpinned) throw new Error('"unpinned: true" but every upstream URL is pinned: drop the mark');
      bootenvs.push(env.data);
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new BootenvLibraryError(problems);
  return { bootenvs, snippets };
}
