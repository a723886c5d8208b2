/**
 * History's arithmetic, pure: (min, sum, max, count) aggregates, epoch-aligned buckets, the
 * incremental minute and hour rollups, which stored resolution answers a range, and coarser
 * steps made on read. The SQLite shell (store.ts) only moves rows in and out.
 *
 * Rollups are incremental: each value is added to its series' open minute and open hour as it
 * arrives; a bucket is written when the clock passes its end. The open hour is also rewritten at
 * every minute's close, so a crash loses at most the open minute's rollup (and raw rows still
 * hold that; recovery rebuilds it from them).
 */
import { DEFAULT_HISTORY_RETENTION, type HistoryRetention } from '../../contract/history-retention.js';
import type { HistoryPoint } from '../../contract/monitor.js';

export const SECOND_MS = 1_000;
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

/** The three stored resolutions and the width of a bucket of each. */
export type Resolution = 'raw' | 'minute' | 'hour';
export const RESOLUTION_MS: Readonly<Record<Resolution, number>> = { raw: SECOND_MS, minute: MINUTE_MS, hour: HOUR_MS };

/** How long each resolution is kept (config monitor.history.retention). */
export type Retention = HistoryRetention;
export const DEFAULT_RETENTION: Retention = DEFAULT_HISTORY_RETENTION;

/** Values over an interval; the mean is sum / count. Summable, so buckets merge exactly. */
export interface Aggregate {
  readonly min: number;
  readonly max: number;
  readonly sum: number;
  readonly count: number;
}

export function single(value: number): Aggregate {
  return { min: value, max: value, sum: value, count: 1 };
}

export function merge(a: Aggregate | undefined, b: Aggregate): Aggregate {
  if (a === undefined) return b;
  return { min: Math.min(a.min, b.min), max: Math.max(a.max, b.max), sum: a.sum + b.sum, count: a.count + b.count };
}

/** The start of the `widthMs` bucket holding `t` (buckets are aligned to the Unix epoch). */
export function bucketOf(t: number, widthMs: number): number {
  return Math.floor(t / widthMs) * widthMs;
}

/**
 * An aggregate as a point. The mean is held inside [min, max]: summing floats can land it a unit
 * in the last place outside (three 0.1s sum to 0.30000000000000004, a third of which is over 0.1).
 */
export function pointOf(t: number, a: Aggregate): HistoryPoint {
  const mean = a.sum / a.count;
  return { t, min: a.min, mean: Math.min(a.max, Math.max(a.min, mean)), max: a.max };
}

/** One bucket of one series, as the store writes it. */
export interface BucketRow {
  readonly key: number;
  readonly t: number;
  readonly agg: Aggregate;
}

/** What `advance` hands the store to write: closed minutes (final), and hour rows to replace (closed ones and, when a minute closed, the open ones as they stand). */
export interface Closed {
  readonly minutes: readonly BucketRow[];
  readonly hours: readonly BucketRow[];
}

/** The open minute and hour of every series (by the store's numeric key), fed value by value. */
export class RollupBuilder {
  private readonly minutes = new Map<number, { t: number; agg: Aggregate }>();
  private readonly hours = new Map<number, { t: number; agg: Aggregate }>();
  /** Minutes before this are closed: a value for them (the clock stepped back) is not rolled up again. */
  private closedBefore = -Infinity;

  /** Adds one value at `t`. Returns false (and adds nothing) for a minute already closed. */
  add(key: number, t: number, value: number): boolean {
    return this.addAggregate(key, t, single(value));
  }

  /** Adds a whole aggregate at `t` to both the minute and the hour holding it. */
  addAggregate(key: number, t: number, agg: Aggregate): boolean {
    const minute = bucketOf(t, MINUTE_MS);
    if (minute < this.closedBefore) return false;
    this.into(this.minutes, key, minute, agg);
    this.into(this.hours, key, bucketOf(t, HOUR_MS), agg);
    return true;
  }

  /** Seeds an open hour with a minute already written (recovery after a restart); the minute itself stays closed. */
  seedHour(key: number, minuteT: number, agg: Aggregate): void {
    this.into(this.hours, key, bucketOf(minuteT, HOUR_MS), agg);
  }

  /** Closes every bucket that ends at or before `now` and returns what to write. */
  advance(now: number): Closed {
    const minuteNow = bucketOf(now, MINUTE_MS);
    const hourNow = bucketOf(now, HOUR_MS);
    const minutes: BucketRow[] = [];
    for (const [key, open] of this.minutes) {
      if (open.t < minuteNow) {
        minutes.push({ key, t: open.t, agg: open.agg });
        this.minutes.delete(key);
      }
    }
    if (minuteNow > this.closedBefore) this.closedBefore = minuteNow;
    const hours: BucketRow[] = [];
    for (const [key, open] of this.hours) {
      if (open.t < hourNow) {
        hours.push({ key, t: open.t, agg: open.agg });
        this.hours.delete(key);
      } else if (minutes.length > 0) {
        hours.push({ key, t: open.t, agg: open.agg });
      }
    }
    return { minutes, hours };
  }

  /** The series' open bucket of `resolution` (minute or hour), if it has one: a query's newest point. */
  open(key: number, resolution: 'minute' | 'hour'): { t: number; agg: Aggregate } | undefined {
    return (resolution === 'minute' ? this.minutes : this.hours).get(key);
  }

  private into(map: Map<number, { t: number; agg: Aggregate }>, key: number, t: number, agg: Aggregate): void {
    const open = map.get(key);
    // A series' buckets open in time order: an older bucket arriving late starts over (its
    // first part was written when it closed, and the write replaces it: see closedBefore).
    if (open === undefined || open.t !== t) map.set(key, { t, agg });
    else open.agg = merge(open.agg, agg);
  }
}

/**
 * How much longer than its window raw data is kept, and how far before the window a range may
 * start and still be answered raw: "the last hour" asked by a client whose clock is a little
 * behind, or a second before the daemon's now, is not turned into per-minute points. Raw rows
 * are pruned at each minute's close to (now - window - 2 min), so they always reach back at
 * least (window + 1 min).
 */
export const RAW_GRACE_MS = MINUTE_MS;

/** Which stored resolution answers a range from `from` (Unix ms), at `stepMs` (0: finest), `now` being now. */
export function chooseResolution(from: number, now: number, stepMs: number, retention: Retention): Resolution {
  const finest: Resolution = from >= now - retention.rawMs - RAW_GRACE_MS ? 'raw' : from >= now - retention.minuteMs ? 'minute' : 'hour';
  if (stepMs >= HOUR_MS) return 'hour';
  if (stepMs >= MINUTE_MS && finest === 'raw') return 'minute';
  return finest;
}

/** The step a response has: the one asked, rounded up to a whole number of the source's buckets (never finer than them). */
export function effectiveStepMs(resolution: Resolution, stepMs: number): number {
  const width = RESOLUTION_MS[resolution];
  return Math.max(1, Math.ceil(stepMs / width)) * width;
}

/** A stored bucket, read back: the start and its aggregate. */
export interface StoredBucket {
  readonly t: number;
  readonly agg: Aggregate;
}

/**
 * Buckets (in time order, at the source resolution) as points of `stepMs` (a whole multiple of
 * the source's width): each coarser point merges the buckets that start inside it, so its min
 * and max are the extremes and its mean weighs each bucket by how many values it holds.
 */
export function toPoints(buckets: readonly StoredBucket[], stepMs: number): HistoryPoint[] {
  const out: HistoryPoint[] = [];
  let t = NaN;
  let acc: Aggregate | undefined;
  for (const b of buckets) {
    const bt = bucketOf(b.t, stepMs);
    if (acc !== undefined && bt !== t) {
      out.push(pointOf(t, acc));
      acc = undefined;
    }
    t = bt;
    acc = merge(acc, b.agg);
  }
  if (acc !== undefined) out.push(pointOf(t, acc));
  return out;
}
