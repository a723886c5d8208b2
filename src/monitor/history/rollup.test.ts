import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION, HOUR_MS, MINUTE_MS, RollupBuilder, bucketOf, chooseResolution, effectiveStepMs, merge, pointOf, single, toPoints, type Aggregate, type BucketRow } from './rollup.js';

/** Values at increasing times, as a sampler would give them (one series), over up to ~3 hours. */
const timedValues = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 300_000 }), fc.double({ min: -1e12, max: 1e12, noNaN: true, noDefaultInfinity: true })), { minLength: 1, maxLength: 200 })
  .map((steps) => {
    let t = 1_700_000_000_000;
    return steps.map(([dt, v]) => ({ t: (t += dt), v }));
  });

/** The aggregate of raw values in [from, to), straight from the definition. */
function direct(values: readonly { t: number; v: number }[], from: number, to: number): Aggregate | undefined {
  let acc: Aggregate | undefined;
  for (const { t, v } of values) if (t >= from && t < to) acc = merge(acc, single(v));
  return acc;
}

/** Feeds `values` one by one as the store does (advance, then add), keeping the last write of each bucket. */
function rollUp(values: readonly { t: number; v: number }[], end: number): { minutes: Map<number, Aggregate>; hours: Map<number, Aggregate> } {
  const b = new RollupBuilder();
  const minutes = new Map<number, Aggregate>();
  const hours = new Map<number, Aggregate>();
  const write = (into: Map<number, Aggregate>, rows: readonly BucketRow[]): void => rows.forEach((r) => into.set(r.t, r.agg));
  for (const { t, v } of values) {
    const c = b.advance(t);
    write(minutes, c.minutes);
    write(hours, c.hours);
    b.add(1, t, v);
  }
  const c = b.advance(end);
  write(minutes, c.minutes);
  write(hours, c.hours);
  return { minutes, hours };
}

describe('history rollups', () => {
  it('min <= mean <= max for every aggregate point, floats summed in any order', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e15, max: 1e15, noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 100 }), (vs) => {
        const p = pointOf(0, vs.map(single).reduce<Aggregate | undefined>((a, x) => merge(a, x), undefined) as Aggregate);
        expect(p.min).toBeLessThanOrEqual(p.mean);
        expect(p.mean).toBeLessThanOrEqual(p.max);
      }),
    );
  });

  it('the mean stays inside [min, max] where a float sum lands outside (three 0.1s)', () => {
    const a = [0.1, 0.1, 0.1].map(single).reduce<Aggregate | undefined>((x, y) => merge(x, y), undefined) as Aggregate;
    expect(a.sum / a.count).toBeGreaterThan(0.1);
    expect(pointOf(0, a).mean).toBe(0.1);
  });

  it('closed minute and hour buckets agree with the raw values in them', () => {
    fc.assert(
      fc.property(timedValues, (values) => {
        const end = (values.at(-1)?.t ?? 0) + 2 * HOUR_MS;
        const { minutes, hours } = rollUp(values, end);
        const expectMinutes = new Set(values.map((x) => bucketOf(x.t, MINUTE_MS)));
        expect(new Set(minutes.keys())).toEqual(expectMinutes);
        for (const [t, agg] of minutes) {
          const d = direct(values, t, t + MINUTE_MS) as Aggregate;
          expect(agg.min).toBe(d.min);
          expect(agg.max).toBe(d.max);
          expect(agg.count).toBe(d.count);
          expect(agg.sum).toBeCloseTo(d.sum, 0);
        }
        expect(new Set(hours.keys())).toEqual(new Set(values.map((x) => bucketOf(x.t, HOUR_MS))));
        for (const [t, agg] of hours) {
          const d = direct(values, t, t + HOUR_MS) as Aggregate;
          expect([agg.min, agg.max, agg.count]).toEqual([d.min, d.max, d.count]);
        }
      }),
    );
  });

  it('coarser points made on read agree with the raw values in them, whatever the step', () => {
    fc.assert(
      fc.property(timedValues, fc.integer({ min: 1, max: 120 }), (values, minutesPerStep) => {
        const step = minutesPerStep * MINUTE_MS;
        const { minutes } = rollUp(values, (values.at(-1)?.t ?? 0) + MINUTE_MS);
        const buckets = [...minutes].sort(([a], [b]) => a - b).map(([t, agg]) => ({ t, agg }));
        for (const p of toPoints(buckets, step)) {
          const d = direct(values, p.t, p.t + step) as Aggregate;
          expect(p.min).toBe(d.min);
          expect(p.max).toBe(d.max);
          expect(p.min).toBeLessThanOrEqual(p.mean);
          expect(p.mean).toBeLessThanOrEqual(p.max);
        }
        expect(toPoints(buckets, step).reduce((n, p) => n + (direct(values, p.t, p.t + step)?.count ?? 0), 0)).toBe(values.length);
      }),
    );
  });

  it('rewrites the open hour at each minute close, so the hour row is current to the last minute', () => {
    const b = new RollupBuilder();
    const t0 = 10 * HOUR_MS;
    b.add(1, t0 + 1_000, 5);
    b.add(1, t0 + 2_000, 7);
    const first = b.advance(t0 + MINUTE_MS);
    expect(first.minutes).toEqual([{ key: 1, t: t0, agg: { min: 5, max: 7, sum: 12, count: 2 } }]);
    expect(first.hours).toEqual([{ key: 1, t: t0, agg: { min: 5, max: 7, sum: 12, count: 2 } }]);
    expect(b.advance(t0 + MINUTE_MS + 5_000)).toEqual({ minutes: [], hours: [] });
  });

  it('refuses a value for a minute already closed (the clock stepped back), instead of replacing the written bucket', () => {
    const b = new RollupBuilder();
    b.add(1, 120_000, 1);
    b.advance(180_000);
    expect(b.add(1, 130_000, 99)).toBe(false);
    expect(b.open(1, 'minute')).toBeUndefined();
  });

  it('answers from the finest resolution that covers the range, or a coarser one for a coarse step', () => {
    const now = 1_000 * HOUR_MS;
    const r = DEFAULT_RETENTION;
    expect(chooseResolution(now - HOUR_MS, now, 0, r)).toBe('raw');
    expect(chooseResolution(now - HOUR_MS - 60_000, now, 0, r)).toBe('raw');
    expect(chooseResolution(now - HOUR_MS - 60_001, now, 0, r)).toBe('minute');
    expect(chooseResolution(now - HOUR_MS, now, MINUTE_MS, r)).toBe('minute');
    expect(chooseResolution(now - 7 * 24 * HOUR_MS, now, 0, r)).toBe('minute');
    expect(chooseResolution(now - 8 * 24 * HOUR_MS, now, 0, r)).toBe('hour');
    expect(chooseResolution(now - 60_000, now, 2 * HOUR_MS, r)).toBe('hour');
    expect(effectiveStepMs('raw', 0)).toBe(1_000);
    expect(effectiveStepMs('minute', 90_000)).toBe(120_000);
    expect(effectiveStepMs('hour', 1_000)).toBe(HOUR_MS);
  });
});
