// Folder-level import graph of a source tree (central/ by default): which top-level folder imports which.
// A node is a top-level folder (`central/tasks/...` → `tasks`) or a top-level file (`central/features.ts` → `features.ts`),
// so the composition root files do not fuse with the folders they wire. Tests and *.test-support.ts are left out: the graph is the product's.
// Run after `npm run build`: `node dist/scripts/arch/import-graph.js central [--list | --mermaid]` (prints edges, cycles, two-way pairs).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Edge = { from: string; to: string; files: string[] };

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name === 'testdata' || name === 'node_modules') continue;
      out.push(...sourceFiles(path));
    } else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.test-support.ts') && !name.endsWith('.d.ts')) {
      out.push(path);
    }
  }
  return out;
}

function nodeOf(root: string, file: string): string | undefined {
  const rel = relative(root, file);
  if (rel.startsWith('..')) return undefined;
  const top = rel.split(sep)[0];
  return top.endsWith('.js') ? top.replace(/\.js$/, '.ts') : top; // imports name the emitted .js file

}

/** Every folder-level edge `from → to` (from ≠ to) with the files that make it, sorted. */
export function importGraph(root: string): Edge[] {
  const edges = new Map<string, Edge>();
  for (const file of sourceFiles(root)) {
    const from = nodeOf(root, file)!;
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(IMPORT_RE)) {
      const to = nodeOf(root, resolve(dirname(file), match[1]));
      if (to === undefined || to === from) continue;
      const key = `${from} ${to}`;
      const edge = edges.get(key) ?? { from, to, files: [] };
      const rel = relative(root, file);
      if (!edge.files.includes(rel)) edge.files.push(rel);
      edges.set(key, edge);
    }
  }
  return [...edges.values()].sort((a, b) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to));
}

/** Strongly connected components with more than one node: each is a set of folders that import each other. */
export function cycles(edges: Edge[]): string[][] {
  const nodes = [...new Set(edges.flatMap((e) => [e.from, e.to]))].sort();
  const next = new Map(nodes.map((n) => [n, edges.filter((e) => e.from === n).map((e) => e.to)]));
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) out.push(component.sort());
    }
  };
  for (const n of nodes) if (!idx.has(n)) visit(n);
  return out;
}

/** Pairs of folders that import each other directly, as `a↔b` with a < b. */
export function twoWayPairs(edges: Edge[]): string[] {
  const set = new Set(edges.map((e) => `${e.from} ${e.to}`));
  return edges.filter((e) => e.from < e.to && set.has(`${e.to} ${e.from}`)).map((e) => `${e.from}↔${e.to}`);
}

/** One line per folder: `from → to, to …` (what docs/architecture.md shows). */
export function adjacency(edges: Edge[]): string {
  const out = new Map<string, string[]>();
  for (const e of edges) out.set(e.from, [...(out.get(e.from) ?? []), e.to]);
  return [...out].map(([from, tos]) => `${from} → ${tos.join(', ')}`).join('\n');
}

export function mermaid(edges: Edge[]): string {
  const id = (n: string): string => n.replace(/[^A-Za-z0-9]/g, '_');
  const lines = ['graph LR'];
  for (const e of edges) lines.push(`  ${id(e.from)}[${e.from}] --> ${id(e.to)}[${e.to}]`);
  return lines.join('\n');
}

const invokedDirectly = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const args = process.argv.slice(2);
  const root = resolve(args.find((a) => !a.startsWith('--')) ?? 'central');
  const edges = importGraph(root);
  if (args.includes('--mermaid')) {
    console.log(mermaid(edges));
  } else if (args.includes('--list')) {
    console.log(adjacency(edges));
  } else {
    for (const e of edges) console.log(`${e.from} -> ${e.to}`);
  }
  const found = cycles(edges);
  for (const c of found) console.log(`cycle: ${c.join(' ')}`);
  for (const p of twoWayPairs(edges)) console.log(`two-way: ${p}`);
}
