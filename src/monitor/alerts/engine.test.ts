import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AlertRule } from '../../contract/alerts.js';
import type { AlertEvent } from '../../contract/monitor.js';
import { AlertEngine, alertId } from './engine.js';
import { gpuSample, memorySample, sample, sliceSample, GIB } from './samples.case.js';

const rule = (over: Partial<AlertRule> = {}): AlertRule => ({
  name: 'mem',
  figure: 'gpu_memory_used_ratio',
  direction: 'above',
  threshold: 0.85,
  clear: 0.8,
  forSeconds: 0,
  windowSeconds: 0,
  severity: 'warning',
  ...over,
});

/** The ratio the engine reads from memorySample(_, ratio) (bytes are whole). */
const seen = (ratio: number): number => (memorySample(0, ratio).gpus[0]?.memoryUsedBytes as number) / (80 * GIB);

/** Feeds ratios one second apart; returns every event with the index of the sample it came on. */
function run(engine: AlertEngine, ratios: readonly number[]): { at: number; event: AlertEvent }[] {
  return ratios.flatMap((r, i) => engine.evaluate(memorySample(i * 1000, r)).map((event) => ({ at: i, event })));
}

describe('AlertEngine', () => {
  it('fires past the threshold, stays firing inside the band, resolves at clear, with one id', () => {
    const events = run(new AlertEngine([rule()]), [0.5, 0.86, 0.83, 0.84, 0.81, 0.8, 0.9]);
    expect(events.map((e) => [e.at, e.event.state])).toEqual([
      [1, 'firing'],
      [5, 'resolved'],
      [6, 'firing'],
    ]);
    const [fired, resolved, again] = events.map((e) => e.event) as [AlertEvent, AlertEvent, AlertEvent];
    expect(resolved.id).toBe(fired.id);
    expect(again.id).not.toBe(fired.id);
    expect(fired).toMatchObject({ rule: 'mem', severity: 'warning', subject: { gpu: 0, uuid: 'GPU-aaaa' }, threshold: 0.85, startedAt: 1000, resolvedAt: null, silenced: false });
    expect(fired.value).toBeCloseTo(0.86, 6);
    expect(fired.summary).toBe('GPU 0 memory at 86% (threshold 85%)');
    expect(resolved).toMatchObject({ state: 'resolved', startedAt: 1000, resolvedAt: 5000 });
  });

  it('waits `for` before firing, and forgets a pending alert that falls back', () => {
    const engine = new AlertEngine([rule({ forSeconds: 3 })]);
    // Over at 1, 2 (pending), back at 3, over again from 4: fires at 7 (4 + 3 s).
    const events = run(engine, [0.1, 0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9]);
    expect(events.map((e) => [e.at, e.event.state])).toEqual([[7, 'firing']]);
    expect(events[0]?.event.summary).toBe('GPU 0 memory at 90% (threshold 85%) for 3s');
  });

  it('resolves when the subject goes away (a slice ends)', () => {
    const engine = new AlertEngine([rule({ name: 'slice-mem', figure: 'slice_memory_used_ratio' })]);
    const full = sliceSample({ memoryUsedBytes: 9.9 * GIB });
    const [fired] = engine.evaluate(sample(0, { slices: [full] }));
    expect(fired).toMatchObject({ state: 'firing', subject: { task: 'aaaaaaaaaaaa', tenant: 'team-a', gpu: 0, uuid: 'GPU-aaaa' } });
    expect(fired?.summary).toBe('task aaaaaaaaaaaa on GPU 0 memory (of its slice) at 99% (threshold 85%)');
    expect(engine.evaluate(sample(1000, { slices: [] }))).toEqual([{ ...fired, state: 'resolved', resolvedAt: 1000 }]);
  });

  it('names no tenant for the slice of a task of no tenant (sampled as tenant "")', () => {
    const engine = new AlertEngine([rule({ name: 'slice-mem', figure: 'slice_memory_used_ratio' })]);
    const [fired] = engine.evaluate(sample(0, { slices: [sliceSample({ tenant: '', memoryUsedBytes: 9.9 * GIB })] }));
    expect(fired?.subject).toEqual({ task: 'aaaaaaaaaaaa', gpu: 0, uuid: 'GPU-aaaa' });
    expect(fired?.summary).toBe('task aaaaaaaaaaaa on GPU 0 memory (of its slice) at 99% (threshold 85%)');
  });

  it('counts new XIDs over the window: fires at once, resolves when the window has passed', () => {
    const engine = new AlertEngine([rule({ name: 'xid', figure: 'gpu_xid_errors_increase', threshold: 0, clear: 0, windowSeconds: 10, severity: 'critical' })]);
    const at = (t: number, xids: number) => engine.evaluate(sample(t * 1000, { gpus: [gpuSample({ xidErrors: xids, lastXid: xids > 0 ? 79 : null })] }));
    expect(at(0, 3)).toEqual([]); // the first value is a baseline, not news
    expect(at(1, 3)).toEqual([]);
    const [fired] = at(2, 4);
    expect(fired).toMatchObject({ state: 'firing', value: 1, severity: 'critical', summary: 'GPU 0: 1 new XID errors in the last 10s' });
    expect(at(5, 4)).toEqual([]);
    expect(at(11, 4)).toEqual([]); // the rise at 2 is still inside (1, 11]
    expect(at(13, 4)).toEqual([{ ...fired, state: 'resolved', resolvedAt: 13_000 }]);
    expect(at(14, 1)[0]).toMatchObject({ state: 'firing', value: 1 }); // a reset: the new value counts
  });

  it('names the waiting task and its tenant for the queue rule', () => {
    const engine = new AlertEngine([rule({ name: 'wait', figure: 'queue_oldest_wait_seconds', threshold: 1800, clear: 1800 })], (task) => (task === 'bbbbbbbbbbbb' ? 'team-b' : undefined));
    const q = (at: number, wait: number | null) => engine.evaluate(sample(at, { queue: { queued: wait === null ? 0 : 1, oldestTask: wait === null ? null : 'bbbbbbbbbbbb', oldestWaitSeconds: wait } }));
    expect(q(0, 1000)).toEqual([]);
    const [fired] = q(1000, 1801);
    expect(fired).toMatchObject({ subject: { task: 'bbbbbbbbbbbb', tenant: 'team-b' }, summary: 'task bbbbbbbbbbbb waiting at 30m (threshold 30m)' });
    expect(q(2000, null)[0]).toMatchObject({ state: 'resolved', id: fired?.id });
  });

  it('leaves out a figure the backend cannot read, and a slice with no compute limit', () => {
    const engine = new AlertEngine([rule({ name: 't', figure: 'gpu_temperature_celsius', threshold: 80, clear: 75 }), rule({ name: 'pin', figure: 'slice_compute_pinned_ratio', threshold: 0.95, clear: 0.85 })]);
    expect(engine.evaluate(sample(0, { gpus: [gpuSample({ temperatureCelsius: null })], slices: [sliceSample({ computeShare: 0.5 })] }))).toEqual([]);
    const fired = engine.evaluate(sample(1000, { gpus: [gpuSample({ temperatureCelsius: 85 })], slices: [sliceSample({ computeLimit: 0.3, computeShare: 0.3 })] }));
    expect(fired.map((a) => a.rule).sort()).toEqual(['pin', 't']);
  });

  it('resolves the alerts of a rule removed or changed by setRules, keeps those of an unchanged one', () => {
    const engine = new AlertEngine([rule(), rule({ name: 'other', threshold: 0.5, clear: 0.4 })]);
    const fired = engine.evaluate(memorySample(0, 0.9));
    expect(fired).toHaveLength(2);
    engine.setRules([rule({ name: 'other', threshold: 0.5, clear: 0.4 })]);
    const next = engine.evaluate(memorySample(1000, 0.9));
    expect(next).toEqual([{ ...fired.find((a) => a.rule === 'mem'), state: 'resolved', resolvedAt: 1000 }]);
    expect(engine.firing().map((a) => a.rule)).toEqual(['other']);
  });

  it('takes back firing alerts after a restart: same id while it holds, resolved when it does not', () => {
    const before = new AlertEngine([rule()]);
    const [fired] = before.evaluate(memorySample(0, 0.9)) as [AlertEvent];
    const after = new AlertEngine([rule()]);
    after.restore([fired]);
    expect(after.evaluate(memorySample(5000, 0.82))).toEqual([]);
    expect(after.firing()).toEqual([fired]);
    expect(after.evaluate(memorySample(6000, 0.5))).toEqual([{ ...fired, state: 'resolved', resolvedAt: 6000 }]);
    const orphaned = new AlertEngine([]);
    orphaned.restore([fired]);
    expect(orphaned.evaluate(memorySample(7000, 0.9))).toEqual([{ ...fired, state: 'resolved', resolvedAt: 7000 }]);
  });

  it('makes ids from the rule, the subject and the firing time', () => {
    expect(alertId('mem', 'gpu:GPU-aaaa', 1000)).toMatch(/^[0-9a-f]{16}$/);
    expect(alertId('mem', 'gpu:GPU-aaaa', 1000)).toBe(alertId('mem', 'gpu:GPU-aaaa', 1000));
    expect(alertId('mem', 'gpu:GPU-aaaa', 1001)).not.toBe(alertId('mem', 'gpu:GPU-aaaa', 1000));
  });

  describe('properties', () => {
    const ruleArb = fc
      .record({ threshold: fc.integer({ min: 10, max: 90 }), band: fc.integer({ min: 0, max: 10 }), forSeconds: fc.integer({ min: 0, max: 5 }), direction: fc.constantFrom<'above' | 'below'>('above', 'below') })
      .map(({ threshold, band, forSeconds, direction }) => rule({ threshold: threshold / 100, clear: (direction === 'above' ? threshold - band : threshold + band) / 100, forSeconds, direction }));
    const ratiosArb = fc.array(fc.integer({ min: 0, max: 100 }).map((x) => x / 100), { minLength: 1, maxLength: 60 });

    it('resolved always follows firing with the same id, and alerts alternate', () => {
      fc.assert(
        fc.property(ruleArb, ratiosArb, (r, ratios) => {
          const events = run(new AlertEngine([r]), ratios).map((e) => e.event);
          events.forEach((e, i) => {
            expect(e.state).toBe(i % 2 === 0 ? 'firing' : 'resolved');
            if (e.state === 'resolved') {
              const fired = events[i - 1] as AlertEvent;
              expect(e.id).toBe(fired.id);
              expect(e.startedAt).toBe(fired.startedAt);
              expect(e.resolvedAt as number).toBeGreaterThan(fired.startedAt);
            }
          });
        }),
      );
    });

    it('no change of state while the figure stays inside the hysteresis band', () => {
      fc.assert(
        fc.property(ruleArb, ratiosArb, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 40 }), (r, prefix, inside) => {
          const engine = new AlertEngine([r]);
          run(engine, prefix);
          const lo = Math.min(r.threshold, r.clear);
          const hi = Math.max(r.threshold, r.clear);
          // Strictly between clear and threshold, or on the threshold itself (not past it).
          const band = inside.map((x) => lo + x * (hi - lo)).filter((v) => (r.direction === 'above' ? seen(v) > r.clear && seen(v) <= r.threshold : seen(v) < r.clear && seen(v) >= r.threshold));
          const firing = engine.firing().length;
          const events = band.flatMap((v, i) => engine.evaluate(memorySample((prefix.length + i) * 1000, v)));
          // Not past the threshold: a pending alert is forgotten, a firing one stays, nothing fires or resolves.
          expect(events).toEqual([]);
          expect(engine.firing().length).toBe(firing);
        }),
      );
    });

    it('fires only after the figure has been past the threshold for `for`, on every sample since', () => {
      fc.assert(
        fc.property(ruleArb, ratiosArb, (r, ratios) => {
          const over = (v: number): boolean => (r.direction === 'above' ? v > r.threshold : v < r.threshold);
          for (const { at, event } of run(new AlertEngine([r]), ratios)) {
            if (event.state !== 'firing') continue;
            const from = at - r.forSeconds;
            expect(from).toBeGreaterThanOrEqual(0);
            for (let i = from; i <= at; i++) expect(over(seen(ratios[i] as number))).toBe(true);
          }
        }),
      );
    });
  });
});
