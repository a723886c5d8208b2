import { describe, expect, it } from 'vitest';
import { findCycles, importGraph, specifiers, type ImportGraph } from './import-graph.js';
import { REPO_ROOT } from './helpers/cli.js';

/** DESIGN.md: "No import cycles anywhere." Between modules, and between the layers (src/<dir>) they form. */
describe('import cycles in src/', () => {
  const graph = importGraph(REPO_ROOT);

  it('reads the whole tree', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('src/cli/main.ts')).toContain('src/cli/commands/index.ts');
  });

  it('has none between modules', () => {
    expect(findCycles(graph).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('has none between layers (src/<dir>: domain, scheduler, contract, gpu, node, api, app, cli)', () => {
    const layer = (file: string): string => file.split('/').slice(0, 2).join('/');
    const layers = new Map<string, Set<string>>();
    for (const [from, targets] of graph) {
      const edges = layers.get(layer(from)) ?? new Set<string>();
      for (const to of targets) if (to.startsWith('src/') && layer(to) !== layer(from)) edges.add(layer(to));
      layers.set(layer(from), edges);
    }
    const asGraph: ImportGraph = new Map([...layers].map(([k, v]) => [k, [...v]]));
    expect(findCycles(asGraph).map((c) => c.join(' -> '))).toEqual([]);
  });
});

describe('the cycle finder', () => {
  const g = (edges: Record<string, string[]>): ImportGraph => new Map(Object.entries(edges));

  it.each([
    ['two modules importing each other', { a: ['b'], b: ['a'] }, [['a', 'b', 'a']]],
    ['a module importing itself', { a: ['a'] }, [['a', 'a']]],
    ['a longer ring, named from its first module by the shortest way back', { a: ['b'], b: ['c', 'x'], c: ['a'], x: [] }, [['a', 'b', 'c', 'a']]],
    ['two separate rings', { a: ['b'], b: ['a'], c: ['d'], d: ['c'] }, [['a', 'b', 'a'], ['c', 'd', 'c']]],
    ['none in a diamond', { a: ['b', 'c'], b: ['d'], c: ['d'], d: [] }, []],
  ])('%s', (_name, edges, cycles) => {
    expect(findCycles(g(edges))).toEqual(cycles);
  });

  it('sees static, type-only, re-exported and dynamic imports of relative paths, and nothing else', () => {
    const code = [
      "import { a } from './a.js';",
      "import type { B } from '../b.js';",
      "export * from './c.js';",
      "export { d } from './d.js';",
      "const e = await import('./e.js');",
      "type F = import('./f.js').F;",
      "import { readFileSync } from 'node:fs';",
      "import { z } from 'zod';",
      "const s = 'import x from \"./not-an-import.js\"';",
    ].join('\n');
    expect(specifiers('x.ts', code)).toEqual(['./a.js', '../b.js', './c.js', './d.js', './e.js', './f.js']);
  });
});
