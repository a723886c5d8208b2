import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fleetSample } from './fixtures.js';
import { HOUR_MS, MINUTE_MS } from './rollup.js';
import { gpuSubject, QUEUE_SUBJECT, taskSubject, tenantSubject } from './series.js';
import { HistoryStore, RECORD_CHUNK } from './store.js';

const T0 = 1_800_000_000_000; // on an hour boundary
const dirs: string[] = [];
const tempDb = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'gs-history-'));
  dirs.push(dir);
  return join(dir, 'history.sqlite');
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('HistoryStore', () => {
  it('keeps each series of a sample, raw, with a task summed over its GPUs and a tenant over its slices', () => {
    const store = new HistoryStore(':memory:');
    const s = fleetSample(T0, 2, 4, 2, 3);
    // One task on two GPUs: its series is the sum of both slices.
    const twoGpus = { ...s, slices: [...s.slices, { ...s.slices[0]!, gpu: 1, uuid: 'GPU-1', memoryUsedBytes: 1000 }] };
    store.record(twoGpus);
    const q = (series: Parameters<HistoryStore['query']>[0]['series'], subject: string) => store.query({ series, subject, from: T0 - 1000, to: T0 + 1000, stepMs: 0, now: T0 + 1 }).points;
    expect(q('gpu_utilization', gpuSubject(1))).toEqual([{ t: T0, min: s.gpus[1]!.utilizationGpu, mean: s.gpus[1]!.utilizationGpu, max: s.gpus[1]!.utilizationGpu }]);
    expect(q('slice_memory_used_bytes', taskSubject(s.slices[0]!.task))[0]?.mean).toBe(s.slices[0]!.memoryUsedBytes + 1000);
    const tenant0 = twoGpus.slices.filter((x) => x.tenant === 'tenant0').reduce((n, x) => n + x.memoryUsedBytes, 0);
    expect(q('tenant_memory_used_bytes', tenantSubject('tenant0'))[0]?.mean).toBe(tenant0);
    expect(q('queue_length', QUEUE_SUBJECT)[0]?.mean).toBe(3);
    expect(store.known('slice_compute_share', taskSubject(s.slices[1]!.task))).toEqual({ tenant: 'tenant1' });
    expect(q('gpu_power_watts', gpuSubject(7))).toEqual([]);
    store.close();
  });

  it('leaves out a figure the backend could not read instead of storing 0', () => {
    const store = new HistoryStore(':memory:');
    const s = fleetSample(T0, 1, 0);
    store.record({ ...s, gpus: [{ ...s.gpus[0]!, utilizationGpu: null }] });
    expect(store.query({ series: 'gpu_utilization', subject: gpuSubject(0), from: T0 - 1, to: T0 + 1, stepMs: 0, now: T0 }).points).toEqual([]);
    expect(store.query({ series: 'gpu_memory_used_bytes', subject: gpuSubject(0), from: T0 - 1, to: T0 + 1, stepMs: 0, now: T0 }).points).toHaveLength(1);
    store.close();
  });

  it('answers 2 h from minute rollups (the open minute included) that agree with the raw samples', () => {
    const store = new HistoryStore(':memory:');
    const raw: number[] = [];
    for (let t = T0; t < T0 + 2 * HOUR_MS + 30_000; t += 1000) {
      const s = fleetSample(t, 1, 0);
      raw.push(s.gpus[0]!.temperatureCelsius as number);
      store.record(s);
    }
    const now = T0 + 2 * HOUR_MS + 30_000;
    const a = store.query({ series: 'gpu_temperature_celsius', subject: gpuSubject(0), from: now - 2 * HOUR_MS, to: now, stepMs: 0, now });
    expect(a.resolution).toBe('minute');
    expect(a.stepMs).toBe(MINUTE_MS);
    expect(a.points).toHaveLength(121);
    for (const p of a.points) {
      const inside = raw.slice((p.t - T0) / 1000, (p.t - T0) / 1000 + 60);
      expect(p.min).toBe(Math.min(...inside));
      expect(p.max).toBe(Math.max(...inside));
      expect(p.mean).toBeCloseTo(inside.reduce((x, y) => x + y, 0) / inside.length, 9);
    }
    // The newest point is the open minute: 30 samples so far.
    expect(a.points.at(-1)?.t).toBe(T0 + 2 * HOUR_MS);
    // A coarser step is made on read: 10-minute points from the same minutes.
    const coarse = store.query({ series: 'gpu_temperature_celsius', subject: gpuSubject(0), from: now - 2 * HOUR_MS, to: now, stepMs: 10 * MINUTE_MS, now });
    expect(coarse.stepMs).toBe(10 * MINUTE_MS);
    expect(coarse.points[1]?.max).toBe(Math.max(...raw.slice(600, 1200)));
    // 1 h is raw: one point a second.
    const hour = store.query({ series: 'gpu_temperature_celsius', subject: gpuSubject(0), from: now - HOUR_MS, to: now, stepMs: 0, now });
    expect([hour.resolution, hour.stepMs, hour.points.length]).toEqual(['raw', 1000, 3600]);
    store.close();
  });

  it('picks up after a restart: the open minute and hour are rebuilt from disk, nothing counted twice', () => {
    const path = tempDb();
    const through = (store: HistoryStore, from: number, to: number): void => {
      for (let t = from; t < to; t += 1000) store.record(fleetSample(t, 1, 0));
    };
    const once = new HistoryStore(path);
    through(once, T0, T0 + 10 * MINUTE_MS + 20_000);
    once.close();
    const again = new HistoryStore(path);
    through(again, T0 + 10 * MINUTE_MS + 20_000, T0 + HOUR_MS + 5_000);
    const ref = new HistoryStore(':memory:');
    through(ref, T0, T0 + HOUR_MS + 5_000);
    const ask = (s: HistoryStore, stepMs: number) => s.query({ series: 'gpu_power_watts', subject: gpuSubject(0), from: T0, to: T0 + HOUR_MS, stepMs, now: T0 + HOUR_MS + 5_000 });
    // The same points (means to float rounding: the sums were added in another order).
    const same = (stepMs: number): void => {
      const got = ask(again, stepMs).points;
      const want = ask(ref, stepMs).points;
      expect(got.map((p) => [p.t, p.min, p.max])).toEqual(want.map((p) => [p.t, p.min, p.max]));
      got.forEach((p, i) => expect(p.mean).toBeCloseTo(want[i]!.mean, 9));
    };
    same(MINUTE_MS);
    same(HOUR_MS);
    expect(ask(again, HOUR_MS).points).toHaveLength(1);
    again.close();
    ref.close();
  });

  it('writes a sample larger than RECORD_CHUNK over several turns, behind the one before it, and close() writes what is left', async () => {
    const path = tempDb();
    const store = new HistoryStore(path);
    const S = 300; // 4G + 2S + 2T + 1 = 617 values a sample
    const first = fleetSample(T0, 2, S, 2, 1);
    const second = fleetSample(T0 + 5_000, 2, S, 2, 2);
    expect(4 * 2 + 2 * S + 2 * 2 + 1).toBeGreaterThan(3 * RECORD_CHUNK);
    const q = (series: Parameters<HistoryStore['query']>[0]['series'], subject: string) => store.query({ series, subject, from: T0 - 1000, to: T0 + 10_000, stepMs: 0, now: T0 + 10_000 }).points.map((p) => [p.t, p.mean]);
    store.record(first);
    store.record(second);
    // The first chunk only: the GPUs' series (written first) are there, the queue's (written last) is not yet.
    expect(q('gpu_utilization', gpuSubject(0))).toEqual([[T0, first.gpus[0]!.utilizationGpu]]);
    expect(store.known('queue_length', QUEUE_SUBJECT)).toBeNull();
    let turns = 0;
    while (q('queue_length', QUEUE_SUBJECT).length < 2) {
      await new Promise((r) => setImmediate(r));
      turns += 1;
      expect(turns).toBeLessThan(100);
    }
    expect(turns).toBeGreaterThanOrEqual(8); // 1,234 writes, 128 a turn
    expect(q('queue_length', QUEUE_SUBJECT)).toEqual([[T0, 1], [T0 + 5_000, 2]]);
    const last = S - 1;
    expect(q('slice_memory_used_bytes', taskSubject(first.slices[last]!.task))).toEqual([[T0, first.slices[last]!.memoryUsedBytes], [T0 + 5_000, second.slices[last]!.memoryUsedBytes]]);
    // A third, left half-written: close() finishes it before the file is closed.
    store.record(fleetSample(T0 + 10_000, 2, S, 2, 3));
    store.close();
    const again = new HistoryStore(path);
    expect(again.query({ series: 'queue_length', subject: QUEUE_SUBJECT, from: T0 - 1000, to: T0 + 20_000, stepMs: 0, now: T0 + 20_000 }).points.map((p) => p.mean)).toEqual([1, 2, 3]);
    again.close();
  });

  it('stays within its row bound: (4G + 2S + 2T + 1) series, each at most its window of raw, minute and hour rows', () => {
    // Windows scaled down (1 min raw, 10 min of minutes, 3 h of hours) so 8 h pass quickly; the
    // bound is the same formula at the defaults (store.ts).
    const retention = { rawMs: MINUTE_MS, minuteMs: 10 * MINUTE_MS, hourMs: 3 * HOUR_MS };
    const store = new HistoryStore(tempDb(), { retention });
    const G = 2;
    const S = 4;
    const T = 2;
    let bytesAt4h = 0;
    for (let t = T0; t < T0 + 8 * HOUR_MS; t += 5_000) {
      // Slices churn: each hour a new set of tasks (old ones end), as S live at a time.
      const s = fleetSample(t, G, S, T);
      const hour = Math.floor((t - T0) / HOUR_MS);
      store.record({ ...s, slices: s.slices.map((x) => ({ ...x, task: `${x.task}-h${hour}` })) });
      if (t === T0 + 4 * HOUR_MS) bytesAt4h = store.size().bytes;
    }
    const size = store.size();
    const series = 4 * G + 2 * S + 2 * T + 1;
    // Raw: kept 2 min past its window (RAW_GRACE_MS), pruned at each minute's close (5 s apart here).
    expect(size.raw).toBeLessThanOrEqual(series * ((retention.rawMs + 3 * MINUTE_MS) / 5_000));
    // Minutes and hours: live series keep their window; an ended task's series keep theirs
    // until the hourly sweep, so tasks ended within the window and an hour count too (2 sets here).
    const ended = 2 * (2 * S);
    expect(size.minute).toBeLessThanOrEqual((series + ended) * (retention.minuteMs / MINUTE_MS + 1));
    expect(size.hour).toBeLessThanOrEqual((series + 2 * S * (retention.hourMs / HOUR_MS + 1)) * (retention.hourMs / HOUR_MS + 1));
    // Series whose rows all aged out are forgotten.
    expect(size.series).toBeLessThanOrEqual(4 * G + 2 * T + 1 + 2 * S * (retention.hourMs / HOUR_MS + 2));
    // The file stops growing once the windows are full (freed pages are reused).
    expect(size.bytes).toBeLessThanOrEqual(bytesAt4h * 1.1);
    store.close();
  });

  it('prunes each resolution at the retention it is given, and at a shorter one from the next minute once it is changed', () => {
    const store = new HistoryStore(':memory:', { retention: { rawMs: 10 * MINUTE_MS, minuteMs: 2 * HOUR_MS, hourMs: 24 * HOUR_MS } });
    const end = T0 + 6 * HOUR_MS;
    for (let t = T0; t < end; t += 10_000) store.record(fleetSample(t, 1, 0));
    // Five series (a GPU's four and the queue), a row each per 10 s.
    const series = 5;
    const perMinute = 6 * series;
    // Raw: 10 min, plus up to the 2 min grace the store keeps and the minute not yet pruned.
    expect(store.size().raw).toBeGreaterThanOrEqual(10 * perMinute);
    expect(store.size().raw).toBeLessThanOrEqual(13 * perMinute);
    // Minutes: 2 h of the 6; hours: all 6, the first from T0.
    expect(store.size().minute).toBeGreaterThanOrEqual(series * (2 * 60 - 1));
    expect(store.size().minute).toBeLessThanOrEqual(series * (2 * 60 + 1));
    expect(store.query({ series: 'gpu_utilization', subject: gpuSubject(0), from: T0, to: end, stepMs: HOUR_MS, now: end }).points[0]?.t).toBe(T0);
    // Shorter (a config reload): minute rows past 30 min and hour rows past a day go at the next minute's close.
    store.setRetention({ rawMs: 5 * MINUTE_MS, minuteMs: 30 * MINUTE_MS, hourMs: 24 * HOUR_MS });
    for (let t = end; t < end + MINUTE_MS + 10_000; t += 10_000) store.record(fleetSample(t, 1, 0));
    expect(store.size().minute).toBeLessThanOrEqual(series * (30 + 2));
    expect(store.size().raw).toBeLessThanOrEqual((5 + 3) * perMinute);
    store.close();
  });
});
