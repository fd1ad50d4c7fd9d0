import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cycles, importGraph, twoWayPairs } from './import-graph.js';

const CENTRAL = fileURLToPath(new URL('../../central', import.meta.url));

/**
 * Folder pairs of central/ allowed to import each other, each with its reason in docs/decisions.md
 * ("Central folder imports"). Empty: none is needed today.
 */
const ALLOWED_TWO_WAY: string[] = [];

describe('central/ folder-level import graph', () => {
  it('has no cycle between folders (issue 20)', () => {
    const edges = importGraph(CENTRAL);
    expect(edges.length).toBeGreaterThan(20); // the walk found the tree
    expect(cycles(edges)).toEqual([]);
    expect(twoWayPairs(edges).filter((p) => !ALLOWED_TWO_WAY.includes(p))).toEqual([]);
  });

  it('the API kit knows no resource: central/api imports only auth, keys, pki, metrics and store', () => {
    const kit = importGraph(CENTRAL).filter((e) => e.from === 'api').map((e) => e.to);
    expect(kit.filter((to) => !['auth', 'keys', 'pki', 'metrics', 'store'].includes(to))).toEqual([]);
  });

  describe('the detector', () => {
    const root = mkdtempSync(join(tmpdir(), 'import-graph-'));
    afterAll(() => rmSync(root, { recursive: true, force: true }));
    const file = (path: string, text: string) => {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    file('a/x.ts', "import { y } from '../b/y.js';\nexport const x = y;\n");
    file('b/y.ts', "import type { Z } from '../c/z.js';\nexport const y = 1 as unknown as Z;\n");
    file('c/z.ts', "export type Z = number;\nconst lazy = () => import('../a/x.js');\n");
    file('c/z.test.ts', "import '../d/w.js';\n"); // tests do not count
    file('d/w.ts', "import { x } from '../a/x.js';\nexport const w = x;\n");
    file('root.ts', "import { w } from './d/w.js';\nexport { w };\n");

    it('finds a three-folder cycle through type-only and dynamic imports, not through tests', () => {
      const edges = importGraph(root);
      expect(edges.map((e) => `${e.from}->${e.to}`)).toEqual(['a->b', 'b->c', 'c->a', 'd->a', 'root.ts->d']);
      expect(cycles(edges)).toEqual([['a', 'b', 'c']]);
      expect(twoWayPairs(edges)).toEqual([]);
    });

    it('names a direct two-way pair', () => {
      file('d/v.ts', "import { w } from '../root.js';\nexport const v = w;\n");
      expect(twoWayPairs(importGraph(root))).toEqual(['d↔root.ts']);
    });
  });
});
