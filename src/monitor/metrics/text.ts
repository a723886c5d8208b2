/**
 * Writes metric families in the Prometheus text format or OpenMetrics, for the families taken
 * from a sample (sample-metrics.ts, compat.ts). Not through prom-client's metric objects: with
 * 8 GPUs and 64 slices (about 1,300 series) its set-then-format cost several milliseconds a
 * scrape on an idle core (bench/metrics.bench.ts), most of the 10 ms budget; these families are
 * replaced whole at every sample anyway, so they are written straight from it, each label set
 * escaped once. The daemon's own counters and histograms stay prom-client's (daemon-metrics.ts).
 */

export type FamilyType = 'gauge' | 'counter';

/** One series: its label set, already written (`a="1",b="x"`), and its value. */
export type Series = readonly [labels: string, value: number];

/** `a="1",b="x"` from label pairs, values escaped as the format wants (backslash, quote, newline). */
export function labelText(labels: Readonly<Record<string, string>>): string {
  let text = '';
  for (const key in labels) {
    const v = labels[key]!;
    text += `${text === '' ? '' : ','}${key}="${/[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v}"`;
  }
  return text;
}

function valueText(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/**
 * Appends one family to `out`. OpenMetrics names a counter family without `_total` and its
 * samples with it; the Prometheus text format names both with it. A family with no series is
 * still described (HELP and TYPE), as prom-client does.
 */
export function writeFamily(out: string[], openMetrics: boolean, name: string, help: string, type: FamilyType, series: readonly Series[]): void {
  const family = openMetrics && type === 'counter' ? name.replace(/_total$/, '') : name;
  const sample = openMetrics && type === 'counter' ? `${family}_total` : name;
  out.push(`# HELP ${family} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${family} ${type}`);
  for (const [labels, value] of series) out.push(`${sample}${labels === '' ? '' : `{${labels}}`} ${valueText(value)}`);
}

/**
 * One family of a table: each item gives one value (null: left out of the scrape), or several,
 * each with labels of its own (written, `reason="sw_power_cap"`) after the item's.
 */
export type Family<T> = readonly [name: string, help: string, type: FamilyType, read: (x: T) => number | null | readonly (readonly [extra: string, value: number])[]];

/** Appends every family of `table` over `items` (each with its label set, written once). */
export function writeFamilies<T>(out: string[], openMetrics: boolean, items: readonly (readonly [labels: string, item: T])[], table: readonly Family<T>[]): void {
  for (const [name, help, type, read] of table) {
    const series: Series[] = [];
    for (const [labels, x] of items) {
      const v = read(x);
      if (v === null) continue;
      if (typeof v === 'number') series.push([labels, v]);
      else for (const [extra, value] of v) series.push([labels === '' ? extra : `${labels},${extra}`, value]);
    }
    writeFamily(out, openMetrics, name, help, type, series);
  }
}
