/**
 * The import graph of src/, read with the TypeScript compiler's parser (no type checking): every
 * static `import` and `export ... from`, type-only ones included (they couple modules just the
 * same), every `import()` call and `import('...')` type of a relative path. A hand-written walk
 * rather than a library: none of the graph tools (madge, dependency-cruiser) is a dependency,
 * and TypeScript, which is, parses what they would.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** Module (path relative to the root, `src/...`) -> the modules it imports, in source order. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(m|c)?tsx?$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The relative specifiers a module names, in source order. */
export function specifiers(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: string[] = [];
  const literal = (node: ts.Node | undefined): void => {
    if (node !== undefined && ts.isStringLiteralLike(node)) found.push(node.text);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) literal(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) literal(node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) literal(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) literal(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found.filter((s) => s.startsWith('./') || s.startsWith('../'));
}

/** `./x.js` from `dir` as a source file: x.ts (ESM names the output), or x/index.ts. */
function resolveSpecifier(dir: string, spec: string): string | null {
  const base = resolve(dir, spec);
  const candidates = [base.replace(/\.(m|c)?js$/, '.$1ts'), base, `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? null;
}

/** The graph of every module under `root/dir`; an import that resolves to no file is an error. */
export function importGraph(root: string, dir = 'src'): ImportGraph {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(join(root, dir)).sort()) {
    const edges = specifiers(file, readFileSync(file, 'utf8')).map((spec) => {
      const target = resolveSpecifier(dirname(file), spec);
      if (target === null) throw new Error(`${relative(root, file)} imports "${spec}", which is no file`);
      return relative(root, target);
    });
    graph.set(relative(root, file), [...new Set(edges)]);
  }
  return graph;
}

/**
 * Every cycle's modules, one cycle per strongly connected component (Tarjan), each written as a
 * path that returns to its start: `a.ts -> b.ts -> a.ts`. Empty: the graph is acyclic.
 */
export function findCycles(graph: ImportGraph): string[][] {
  let index = 0;
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const strong = (v: string): void => {
    order.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!order.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) ?? 0, order.get(w) ?? 0));
    }
    if (low.get(v) === order.get(v)) {
      const component: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop();
        if (w === undefined) break;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!order.has(v)) strong(v);
  return components.map((c) => cyclePath(graph, new Set(c))).sort((x, y) => (x.join('\n') < y.join('\n') ? -1 : 1));
}

/** One concrete cycle through a strongly connected component, from its first module (breadth-first, shortest). */
function cyclePath(graph: ImportGraph, members: ReadonlySet<string>): string[] {
  const start = [...members].sort()[0] ?? '';
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift() ?? '';
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u: string | undefined = v; u !== undefined && u !== start; u = previous.get(u)) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}
