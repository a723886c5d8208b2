/**
 * Label and field selectors as the API server parses them (the fake API server's list and
 * watch filters). Label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`,
 * `a notin (x,y)`, comma-joined. Field selectors: `path=value`, `path==value`, `path!=value`,
 * comma-joined, over the fields a resource supports (others are a 400, as on a real server).
 */

export type Selector = (obj: Record<string, unknown>) => boolean;

export class SelectorError extends Error {}

/** Splits on commas outside parentheses. */
function terms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (ch === ',' && depth === 0) {
      out.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  if (current.trim() !== '') out.push(current.trim());
  return out;
}

function labelsOf(obj: Record<string, unknown>): Record<string, string> {
  const metadata = (obj.metadata ?? {}) as { labels?: Record<string, string> };
  return metadata.labels ?? {};
}

export function labelSelector(text: string | null): Selector {
  if (text === null || text.trim() === '') return () => true;
  const tests = terms(text).map((term): Selector => {
    let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m) {
      const [, key, op, list] = m;
      const values = list!.split(',').map((v) => v.trim());
      return op === 'in'
        ? (o) => values.includes(labelsOf(o)[key!] ?? '\0')
        : (o) => !values.includes(labelsOf(o)[key!] ?? '\0');
    }
    m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(term);
    if (m) {
      const [, key, op, value] = m;
      return op === '!=' ? (o) => labelsOf(o)[key!] !== value : (o) => labelsOf(o)[key!] === value;
    }
    m = /^(!?)([\w./-]+)$/.exec(term);
    if (m) {
      const [, not, key] = m;
      return not === '!' ? (o) => !(key! in labelsOf(o)) : (o) => key! in labelsOf(o);
    }
    throw new SelectorError(`unable to parse requirement: '${term}'`);
  });
  return (o) => tests.every((t) => t(o));
}

/** The value at a dotted path as the API server's field sets give it (absent: ''). */
function fieldValue(obj: Record<string, unknown>, path: string): string {
  let value: unknown = obj;
  for (const part of path.split('.')) {
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
  }
  return value === undefined || value === null ? '' : String(value);
}

export function fieldSelector(text: string | null, supported: readonly string[], kind: string): Selector {
  if (text === null || text.trim() === '') return () => true;
  const tests = terms(text).map((term): Selector => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new SelectorError(`invalid selector: '${term}'; can't understand '${term}'`);
    const [, path, op, value] = m;
    if (!supported.includes(path!)) throw new SelectorError(`field label not supported: ${path} (${kind} supports ${supported.join(', ')})`);
    return op === '!=' ? (o) => fieldValue(o, path!) !== value : (o) => fieldValue(o, path!) === value;
  });
  return (o) => tests.every((t) => t(o));
}
