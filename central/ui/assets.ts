import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A file served from memory (the console and Swagger UI are a few hundred KiB, read once at start). */
export interface Asset {
  body: Uint8Array;
  type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
};

function typeOf(name: string): string {
  return TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream';
}

/** Reads the named files of `dir` (those that exist) into memory. */
export function loadAssets(dir: string | undefined, names: readonly string[]): Map<string, Asset> {
  const out = new Map<string, Asset>();
  if (!dir) return out;
  for (const name of names) {
    const path = join(dir, name);
    if (existsSync(path)) out.set(name, { body: readFileSync(path), type: typeOf(name) });
  }
  return out;
}

/**
 * Where the built console is: beside this module in dist (dist/central/ui/public), or, when the central
 * runs from source (unit tests), in the repository's dist. Undefined when it was never built.
 */
export function consoleDir(): string | undefined {
  const candidates = [new URL('./public/', import.meta.url), new URL('../../dist/central/ui/public/', import.meta.url)];
  for (const u of candidates) {
    const dir = fileURLToPath(u);
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

/** swagger-ui-dist's folder in node_modules (a runtime dependency: /docs needs no CDN). */
export function swaggerUiDir(): string | undefined {
  try {
    return dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  } catch {
    return undefined;
  }
}
