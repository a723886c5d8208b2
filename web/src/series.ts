/**
 * A chart's figures over time: one time column and any number of named value columns, kept
 * aligned (a column that did not exist yet, or had no value at a time, holds null there), at most
 * `capacity` rows. Live samples append; history (GET /v1/history) fills in before the first.
 */
import type { HistoryPoint } from '../../src/contract/monitor';

export class Series {
  /** Unix seconds (uPlot's x unit). */
  readonly times: number[] = [];
  readonly columns = new Map<string, (number | null)[]>();
  /** Bumped on every change: charts redraw only when it moved. */
  version = 0;

  constructor(readonly capacity = 900) {}

  push(atMs: number, values: Readonly<Record<string, number | null>>): void {
    const t = atMs / 1000;
    const last = this.times[this.times.length - 1];
    if (last !== undefined && t <= last) return;
    this.times.push(t);
    for (const key of Object.keys(values)) {
      if (!this.columns.has(key)) this.columns.set(key, new Array<number | null>(this.times.length - 1).fill(null));
    }
    for (const [key, column] of this.columns) column.push(values[key] ?? null);
    if (this.times.length > this.capacity) {
      const drop = this.times.length - this.capacity;
      this.times.splice(0, drop);
      for (const column of this.columns.values()) column.splice(0, drop);
    }
    this.version++;
  }

  /** Puts history's points for `key` before the first live row (their means; later points are the live ones already). */
  backfill(key: string, points: readonly HistoryPoint[]): void {
    const first = this.times[0] ?? Infinity;
    const older = points.filter((p) => p.t / 1000 < first);
    if (older.length === 0) return;
    // Rows for the union of the older times already backfilled and these.
    const known = this.times.filter((t) => t < first);
    const times = [...new Set([...known, ...older.map((p) => p.t / 1000)])].sort((a, b) => a - b).slice(-Math.max(0, this.capacity - (this.times.length - known.length)));
    const byTime = new Map(older.map((p) => [p.t / 1000, p.mean]));
    const live = this.times.length - known.length;
    const rebuilt = new Map<string, (number | null)[]>();
    for (const [k, column] of this.columns) {
      const before = new Map(known.map((t, i) => [t, column[i] ?? null]));
      rebuilt.set(k, [...times.map((t) => (k === key ? (byTime.get(t) ?? before.get(t) ?? null) : (before.get(t) ?? null))), ...column.slice(known.length)]);
    }
    if (!rebuilt.has(key)) rebuilt.set(key, [...times.map((t) => byTime.get(t) ?? null), ...new Array<number | null>(live).fill(null)]);
    this.times.splice(0, known.length, ...times);
    this.columns.clear();
    for (const [k, v] of rebuilt) this.columns.set(k, v);
    this.version++;
  }

  column(key: string): (number | null)[] {
    return this.columns.get(key) ?? new Array<number | null>(this.times.length).fill(null);
  }

  keys(prefix = ''): string[] {
    return [...this.columns.keys()].filter((k) => k.startsWith(prefix));
  }
}
