/**
 * Renders deploy/helm/gpushare's templates the way `helm template` would, for the small subset
 * of Go template the chart keeps to (no Helm or Go toolchain is available to CI here, and no
 * npm renderer of Go templates with Helm's functions is well kept). The chart's templates use
 * only what this file implements; anything else is an error naming the template and line, so a
 * template that strays from the subset fails the tests rather than rendering differently.
 *
 * The subset (deploy/helm/gpushare/README.md lists it for chart authors):
 * - `{{ X }}` where X is `.Values.a.b`, `.Release.Namespace`, `.Release.Name`, `.Chart.Name`,
 *   `.Chart.Version`, `.Chart.AppVersion`, a "string" or an integer; a path missing from the
 *   values is an error (Helm would print nothing: a misspelt key would go unnoticed);
 * - pipelines `X | f args` (X is f's last argument) of `quote`, `toYaml`, `toJson`,
 *   `indent N`, `nindent N`, `required "message"`, `not`; and `f args X` written as a call;
 * - `{{- if X }}` / `{{- else }}` / `{{- end }}` with Go's truth (false, 0, "", empty list or
 *   map and null are false);
 * - comments `{{/* ... *\/}}`; `{{-` and `-}}` trim the whitespace before / after, as in Go.
 *
 * Run directly, it prints the chart rendered with its default values (namespace
 * gpushare-system), which is deploy/manifests/gpushare.yaml:
 *   npx tsx test/k8s/deploy-render.ts > deploy/manifests/gpushare.yaml
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import yaml from 'js-yaml';

export const CHART_DIR = fileURLToPath(new URL('../../deploy/helm/gpushare/', import.meta.url));
export const DEFAULT_NAMESPACE = 'gpushare-system';

type Scope = { Values: unknown; Release: { Namespace: string; Name: string }; Chart: { Name: string; Version: string; AppVersion: string } };

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'out'; expr: string; line: number }
  | { kind: 'if'; expr: string; line: number; then: Node[]; else: Node[] };

export class TemplateError extends Error {}

/** Text and actions, with `{{-` / `-}}` trimming applied to the text beside them. */
function tokenize(source: string, file: string): ({ kind: 'text'; text: string } | { kind: 'action'; body: string; line: number })[] {
  const out: ({ kind: 'text'; text: string } | { kind: 'action'; body: string; line: number })[] = [];
  const re = /\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m = re.exec(source); m !== null; m = re.exec(source)) {
    let text = source.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1]) text = text.replace(/\s+$/, '');
    out.push({ kind: 'text', text });
    const line = source.slice(0, m.index).split('\n').length;
    const body = (m[2] ?? '').trim();
    if (body.includes('{{')) throw new TemplateError(`${file}:${line}: unterminated action`);
    if (!(body.startsWith('/*') && body.endsWith('*/'))) out.push({ kind: 'action', body, line });
    trimNext = m[3] !== undefined;
    last = m.index + m[0].length;
  }
  let tail = source.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, '');
  if (tail.includes('{{') || tail.includes('}}')) throw new TemplateError(`${file}: unbalanced {{ }}`);
  out.push({ kind: 'text', text: tail });
  return out;
}

function parse(source: string, file: string): Node[] {
  const root: Node[] = [];
  const stack: { nodes: Node[]; node: Extract<Node, { kind: 'if' }> | null; inElse: boolean }[] = [{ nodes: root, node: null, inElse: false }];
  for (const t of tokenize(source, file)) {
    const top = stack[stack.length - 1]!;
    if (t.kind === 'text') {
      if (t.text !== '') top.nodes.push(t);
      continue;
    }
    const [word] = t.body.split(/\s+/, 1);
    if (word === 'if') {
      const node: Extract<Node, { kind: 'if' }> = { kind: 'if', expr: t.body.slice(2).trim(), line: t.line, then: [], else: [] };
      top.nodes.push(node);
      stack.push({ nodes: node.then, node, inElse: false });
    } else if (t.body === 'else') {
      if (!top.node || top.inElse) throw new TemplateError(`${file}:${t.line}: else without if`);
      top.inElse = true;
      top.nodes = top.node.else;
    } else if (t.body === 'end') {
      if (!top.node) throw new TemplateError(`${file}:${t.line}: end without if`);
      stack.pop();
    } else if (['range', 'with', 'define', 'template', 'include', 'block', 'else if'].some((k) => t.body.startsWith(k))) {
      throw new TemplateError(`${file}:${t.line}: "${t.body}" is outside the chart's template subset (test/k8s/deploy-render.ts)`);
    } else {
      top.nodes.push({ kind: 'out', expr: t.body, line: t.line });
    }
  }
  if (stack.length !== 1) throw new TemplateError(`${file}: an if has no end`);
  return root;
}

function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** Go's %v for what YAML values hold. */
function print(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new TemplateError(`${where}: a ${v === null ? 'null' : typeof v} cannot be printed as it is (use toYaml or toJson)`);
}

/** Splits on spaces outside quotes. */
function words(text: string, where: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|[^\s"]+)/y;
  let at = 0;
  while (at < text.length && text.slice(at).trim() !== '') {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) throw new TemplateError(`${where}: cannot read "${text}"`);
    out.push(m[1] as string);
    at = re.lastIndex;
  }
  return out;
}

function argument(word: string, scope: Scope, where: string): unknown {
  if (word.startsWith('"')) return JSON.parse(word) as string;
  if (/^-?\d+$/.test(word)) return Number(word);
  const m = /^\.(Values|Release|Chart)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)$/.exec(word);
  if (!m) throw new TemplateError(`${where}: "${word}" is outside the chart's template subset (test/k8s/deploy-render.ts)`);
  let v: unknown = scope[m[1] as keyof Scope];
  for (const key of (m[2] ?? '').split('.').slice(1)) {
    if (v === null || typeof v !== 'object' || !(key in v)) throw new TemplateError(`${where}: ${word} is not in the values (every key the templates read is in values.yaml)`);
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

const FUNCTIONS: Record<string, (where: string, ...args: unknown[]) => unknown> = {
  quote: (_w, v) => JSON.stringify(v === null || v === undefined ? '' : String(v)),
  toJson: (_w, v) => JSON.stringify(v),
  // Helm's toYaml drops the last newline; js-yaml and Helm's YAML writer differ in layout only.
  toYaml: (_w, v) => yaml.dump(v, { lineWidth: -1, noRefs: true }).replace(/\n$/, ''),
  indent: (_w, n, v) => String(v).split('\n').map((l) => ' '.repeat(n as number) + l).join('\n'),
  nindent: (w, n, v) => `\n${FUNCTIONS.indent!(w, n, v) as string}`,
  required: (w, message, v) => {
    if (v === null || v === undefined || v === '') throw new TemplateError(`${w}: ${String(message)}`);
    return v;
  },
  not: (_w, v) => !truthy(v),
};

function evaluate(expr: string, scope: Scope, where: string): unknown {
  let value: unknown;
  expr.split('|').forEach((part, i) => {
    const [head, ...rest] = words(part.trim(), where);
    if (head === undefined) throw new TemplateError(`${where}: empty pipeline stage in "${expr}"`);
    const fn = FUNCTIONS[head];
    if (!fn) {
      if (i > 0 || rest.length > 0) throw new TemplateError(`${where}: "${head}" is not a function of the chart's template subset`);
      value = argument(head, scope, where);
      return;
    }
    const args = rest.map((w) => argument(w, scope, where));
    if (i > 0) args.push(value);
    if (args.length !== fn.length - 1) throw new TemplateError(`${where}: ${head} takes ${fn.length - 1} argument(s)`);
    value = fn(where, ...args);
  });
  return value;
}

function renderNodes(nodes: Node[], scope: Scope, file: string): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'out') out += print(evaluate(n.expr, scope, `${file}:${n.line}`), `${file}:${n.line}`);
    else out += renderNodes(truthy(evaluate(n.expr, scope, `${file}:${n.line}`)) ? n.then : n.else, scope, file);
  }
  return out;
}

/** Deep merge as Helm merges --set/-f values over the chart's (maps merge, anything else replaces). */
export function mergeValues(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (base === null || over === null || typeof base !== 'object' || typeof over !== 'object' || Array.isArray(base) || Array.isArray(over)) return over;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) out[k] = mergeValues(out[k], v);
  return out;
}

export interface RenderedTemplate {
  readonly file: string;
  readonly text: string;
}

/** Every template (templates/*.yaml, in name order, as `helm template` lists them by file), rendered. */
export function renderChart(overrides: unknown = {}, namespace = DEFAULT_NAMESPACE, chartDir = CHART_DIR): RenderedTemplate[] {
  const chart = yaml.load(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as { name: string; version: string; appVersion: string };
  const values = mergeValues(yaml.load(readFileSync(join(chartDir, 'values.yaml'), 'utf8')), overrides);
  const scope: Scope = { Values: values, Release: { Namespace: namespace, Name: chart.name }, Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion } };
  const dir = join(chartDir, 'templates');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => ({ file: `${chart.name}/templates/${f}`, text: renderNodes(parse(readFileSync(join(dir, f), 'utf8'), f), scope, f) }));
}

/** The YAML documents of a rendering (empty ones, as an if that rendered nothing leaves, dropped). */
export function documents(rendered: readonly RenderedTemplate[]): Record<string, unknown>[] {
  return rendered.flatMap((r) => yaml.loadAll(r.text).filter((d): d is Record<string, unknown> => d !== null && d !== undefined));
}

/** `helm template`'s layout: each template's text under a `# Source:` line. */
export function manifestText(rendered: readonly RenderedTemplate[]): string {
  return rendered
    .filter((r) => r.text.trim() !== '')
    .map((r) => `---\n# Source: ${r.file}\n${r.text.replace(/^\s*(---\s*\n)?/, '').trimEnd()}\n`)
    .join('');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`# gpushare, rendered from deploy/helm/gpushare with its default values (namespace ${DEFAULT_NAMESPACE}).\n# Do not edit: change the chart, then: npx tsx test/k8s/deploy-render.ts > deploy/manifests/gpushare.yaml\n${manifestText(renderChart())}`);
}
