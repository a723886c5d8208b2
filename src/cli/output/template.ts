/**
 * `--format` templates: a small, documented subset of the Go templates docker and kubectl take,
 * enough for the forms scripts use (`{{.ID}}`, `{{json .}}`, `table {{.ID}}\t{{.State}}`).
 * A Go-template library would bring a language (pipelines, ranges, conditionals) nobody asked
 * for and that we would then have to keep compatible; this is the part people type.
 *
 * - `{{.Field}}`, `{{.Field.Sub}}`: a field of the item, matched without regard to case
 *   (`.ID` is `id`, `.ExitCode` is `exitCode`); `{{.}}` is the whole item. Text prints as it
 *   is, numbers and booleans as written, null as nothing, objects and arrays as compact JSON.
 * - `{{json .Field}}`: the value as JSON; `{{upper .Field}}`, `{{lower .Field}}`.
 * - `table ` before the template: aligned columns split at tabs, with a header row of the
 *   fields' names (EXIT CODE for .ExitCode) unless --no-headers.
 * - `\t` and `\n` typed as two characters are a tab and a newline (the shell keeps them so).
 * An unknown field is an error naming the known ones; so is anything else between braces.
 */
import { ErrorCodes, GsError } from '../../domain/index.js';
import { renderTable } from './table.js';

type Fn = 'json' | 'upper' | 'lower';
type Part = { readonly text: string } | { readonly fn: Fn | null; readonly path: readonly string[]; readonly source: string };

const FUNCTIONS: readonly Fn[] = ['json', 'upper', 'lower'];

export interface Template {
  readonly table: boolean;
  readonly parts: readonly Part[];
}

/** Parses a --format value; an action it does not know is an error here, before anything is asked of the daemon. */
export function parseTemplate(format: string): Template {
  let body = format;
  const table = /^table(\s|$)/.test(body);
  if (table) body = body.slice('table'.length).trim();
  body = body.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const parts: Part[] = [];
  let at = 0;
  while (at < body.length) {
    const open = body.indexOf('{{', at);
    if (open < 0) {
      parts.push({ text: body.slice(at) });
      break;
    }
    if (open > at) parts.push({ text: body.slice(at, open) });
    const close = body.indexOf('}}', open + 2);
    if (close < 0) throw bad(`"{{" at character ${open + 1} has no "}}"`);
    parts.push(parseAction(body.slice(open + 2, close).trim()));
    at = close + 2;
  }
  return { table, parts };
}

function parseAction(source: string): Part {
  const words = source.split(/\s+/).filter((w) => w !== '');
  let fn: Fn | null = null;
  if (words.length === 2 && (FUNCTIONS as readonly string[]).includes(words[0] ?? '')) fn = words.shift() as Fn;
  const ref = words[0];
  if (words.length !== 1 || ref === undefined || !/^\.([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)?$/.test(ref)) {
    throw bad(`"{{${source}}}" is not something --format knows; it takes {{.Field}}, {{.Field.Sub}}, {{.}} and {{json|upper|lower .Field}}`);
  }
  return { fn, path: ref === '.' ? [] : ref.slice(1).split('.'), source };
}

function bad(message: string): GsError {
  return new GsError(ErrorCodes.invalidArgument, `--format: ${message}`);
}

/** The field of `value` named `name`, whatever its case; undefined when it has none. */
function field(value: unknown, name: string): { found: boolean; value: unknown } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { found: false, value: undefined };
  const lower = name.toLowerCase();
  const key = Object.keys(value).find((k) => k.toLowerCase() === lower);
  return key === undefined ? { found: false, value: undefined } : { found: true, value: (value as Record<string, unknown>)[key] };
}

function resolve(item: unknown, path: readonly string[]): unknown {
  let value = item;
  for (const [i, name] of path.entries()) {
    const next = field(value, name);
    if (!next.found) {
      const known = value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value).join(', ') : '(none: it is not an object)';
      throw bad(`no field "${path.slice(0, i + 1).join('.')}"; the fields ${i === 0 ? '' : `of .${path.slice(0, i).join('.')} `}are ${known}`);
    }
    value = next.value;
  }
  return value;
}

function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function apply(fn: Fn | null, value: unknown): string {
  switch (fn) {
    case 'json':
      return JSON.stringify(value) ?? 'null';
    case 'upper':
      return text(value).toUpperCase();
    case 'lower':
      return text(value).toLowerCase();
    default:
      return text(value);
  }
}

/** A column's name in a `table` header: the field as typed, words split and upper-cased (.ExitCode: EXIT CODE). */
function header(part: Part): string {
  if ('text' in part) return part.text;
  const last = part.path[part.path.length - 1];
  if (last === undefined) return part.fn === null ? 'VALUE' : part.fn.toUpperCase();
  return last.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toUpperCase();
}

/** The items through the template: one line (or more, where it writes newlines) per item. */
export function renderTemplate(template: Template, items: readonly unknown[], options: { readonly headers?: boolean } = {}): string {
  const lines = items.map((item) => template.parts.map((p) => ('text' in p ? p.text : apply(p.fn, resolve(item, p.path)))).join(''));
  if (!template.table) return lines.join('\n');
  const rows = lines.flatMap((l) => l.split('\n')).map((l) => l.split('\t'));
  const headers = template.parts.map(header).join('').split('\t');
  return renderTable(headers, rows, options);
}
