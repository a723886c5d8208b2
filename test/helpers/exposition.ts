/** A small reader of the Prometheus text format (and OpenMetrics' samples), for tests of /metrics. */

export interface ExposedSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Every sample line; comments (# HELP, # TYPE, # EOF) skipped. Throws on a line it cannot read. */
export function parseExposition(text: string): ExposedSample[] {
  const samples: ExposedSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const raw = m[3]!;
    samples.push({ name: m[1]!, labels, value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw) });
  }
  return samples;
}

/** The one sample of `name` whose labels are exactly `labels`; throws when there is none or more. */
export function value(samples: readonly ExposedSample[], name: string, labels: Readonly<Record<string, string>>): number {
  const want = JSON.stringify(Object.entries(labels).sort());
  const found = samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want);
  if (found.length !== 1) {
    const near = samples.filter((s) => s.name === name).map((s) => JSON.stringify(s.labels)).slice(0, 5);
    throw new Error(`${found.length} samples of ${name}${want}; of that name: ${near.join(' ') || 'none'}`);
  }
  return found[0]!.value;
}
