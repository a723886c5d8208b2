import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MonitorSample } from '../contract/monitor.js';
import type { Task } from '../contract/task.js';
import { readRegion } from '../gpu/region/index.js';
import { Supervisor } from '../node/supervisor.js';
import { h100 } from '../../test/k8s/gpus.js';
import { buildSample, Sampler, type MonitoredTask } from './sampler.js';
import { withRegionFixture } from '../../test/helpers/region-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-sampler-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const task = (over: Partial<Task> = {}): MonitoredTask['task'] => ({ id: 't1', state: 'running', tenant: 'ml', computeLimitPercent: 40, submittedAt: 1_000, ...over });
const held = (index: number, uuid: string, memoryBytes = 8 * 2 ** 30) => ({ index, uuid, memoryBytes, computeMilli: 400 });

describe('buildSample', () => {
  const gpus = [h100(0, { uuid: 'GPU-a', clockSmMHz: 1755, clockMemoryMHz: 2619, energyJoules: 1234.5, pcieReplays: 2, xidErrors: 1, lastXid: 79, eccErrors: { corrected: 3, uncorrected: 0 }, clockEventReasons: ['sw_power_cap'] }), h100(1, { uuid: 'GPU-b' })];

  it('turns each GPU into base units (Hz, joules) and keeps what the backend cannot read as null', () => {
    const s = buildSample({ at: 5_000, hostname: 'h', gpus, tasks: [] });
    expect(s.gpus[0]).toMatchObject({ index: 0, uuid: 'GPU-a', health: 'ok', cordoned: false, clockSmHz: 1_755_000_000, clockMemoryHz: 2_619_000_000, energyJoules: 1234.5, pcieReplays: 2, xidErrors: 1, lastXid: 79, eccCorrectedErrors: 3, eccUncorrectedErrors: 0, throttleReasons: ['sw_power_cap'] });
    expect(s.gpus[1]).toMatchObject({ eccCorrectedErrors: null, energyJoules: null, xidErrors: null });
    expect(s.queue).toEqual({ queued: 0, oldestTask: null, oldestWaitSeconds: null });
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it("shows the health book's holds: a cordon, and a fault as unhealthy while the driver reaches the GPU (lost stays lost)", () => {
    const holds = (uuid: string) => (uuid === 'GPU-a' ? { cordoned: true, faulted: false } : { cordoned: false, faulted: true });
    const s = buildSample({ at: 5_000, hostname: 'h', gpus, tasks: [], holds });
    expect(s.gpus.map((g) => [g.health, g.cordoned])).toEqual([['ok', true], ['unhealthy', false]]);
    const lost = buildSample({ at: 5_000, hostname: 'h', gpus: [h100(1, { uuid: 'GPU-b', health: 'lost' })], tasks: [], holds });
    expect(lost.gpus[0]?.health).toBe('lost');
  });

  it('gives a task one slice per GPU it holds, its ordinal n being its n-th GPU', () => {
    const byKind = (alloc: number) => ({ context: 100, alloc, vmm: 0, array: 0, pool: 0, host: 7, graph: 0 });
    const usage = [
      { device: 0, memoryBytes: 100 + 5000, computeShare: 0.35, bytesByKind: byKind(5000), kernelsLaunched: 12, busyNs: 2_500_000_000, throttleNs: 500_000_000 },
      { device: 1, memoryBytes: 100 + 9, computeShare: 0.1, bytesByKind: byKind(9), kernelsLaunched: 1, busyNs: 0, throttleNs: 0 },
    ];
    const s = buildSample({ at: 5_000, hostname: 'h', gpus, tasks: [{ task: task(), gpus: [held(1, 'GPU-b'), held(0, 'GPU-a', 1024)], usage }] });
    expect(s.slices).toEqual([
      { task: 't1', tenant: 'ml', gpu: 1, uuid: 'GPU-b', state: 'running', memoryLimitBytes: 8 * 2 ** 30, memoryUsedBytes: 5100, memoryByKind: byKind(5000), computeLimit: 0.4, computeShare: 0.35, busySeconds: 2.5, throttledSeconds: 0.5, kernelLaunches: 12, kubernetes: null },
      { task: 't1', tenant: 'ml', gpu: 0, uuid: 'GPU-a', state: 'running', memoryLimitBytes: 1024, memoryUsedBytes: 109, memoryByKind: byKind(9), computeLimit: 0.4, computeShare: 0.1, busySeconds: 0, throttledSeconds: 0, kernelLaunches: 1, kubernetes: null },
    ]);
  });

  it('shows a task before its first CUDA call with nothing used and no share measured; a suspended one as suspended', () => {
    const s = buildSample({ at: 5_000, hostname: 'h', gpus, tasks: [{ task: task({ computeLimitPercent: null }), gpus: [held(0, 'GPU-a')], usage: null }, { task: task({ id: 't2', state: 'suspended', tenant: null }), gpus: [held(1, 'GPU-b')], usage: [] }] });
    expect(s.slices[0]).toMatchObject({ memoryUsedBytes: 0, computeLimit: null, computeShare: null, kernelLaunches: 0, memoryByKind: { context: 0, alloc: 0 } });
    expect(s.slices[1]).toMatchObject({ task: 't2', tenant: '', state: 'suspended', memoryUsedBytes: 0, computeShare: 0 });
  });

  it("gives a pod's container (the node agent) its slices labelled with the pod, its namespace as tenant, suspended as its pod is", () => {
    const usage = [{ device: 0, memoryBytes: 3_000_000, computeShare: 0.2, bytesByKind: { context: 1_000_000, alloc: 2_000_000, vmm: 0, array: 0, pool: 0, host: 0, graph: 0 }, kernelsLaunched: 7, busyNs: 2e9, throttleNs: 5e8 }];
    const containers = [
      { namespace: 'ml', pod: 'train-0', container: 'main', suspended: false, gpus: [{ uuid: 'GPU-b', index: -1, memoryLimitBytes: 4e9, computeLimitPercent: 30 }], usage },
      { namespace: 'ml', pod: 'eval', container: 'w', suspended: true, gpus: [{ uuid: 'GPU-a', index: 0, memoryLimitBytes: 2e9, computeLimitPercent: null }], usage: null },
    ];
    const s = buildSample({ at: 5_000, hostname: 'node-3', gpus, tasks: [], containers });
    expect(s.slices[0]).toEqual({
      task: 'ml/train-0/main', tenant: 'ml', gpu: 1, uuid: 'GPU-b', state: 'running', memoryLimitBytes: 4e9, memoryUsedBytes: 3_000_000, memoryByKind: usage[0]!.bytesByKind,
      computeLimit: 0.3, computeShare: 0.2, busySeconds: 2, throttledSeconds: 0.5, kernelLaunches: 7, kubernetes: { namespace: 'ml', pod: 'train-0', container: 'main' },
    });
    expect(s.slices[1]).toMatchObject({ task: 'ml/eval/w', state: 'suspended', gpu: 0, memoryUsedBytes: 0, computeShare: null, computeLimit: null });
  });

  it('counts the queue and names its longest waiter', () => {
    const s = buildSample({ at: 11_000, hostname: 'h', gpus, tasks: [
      { task: task({ id: 'q2', state: 'queued', submittedAt: 4_000 }), gpus: [], usage: null },
      { task: task({ id: 'q1', state: 'queued', submittedAt: 2_000 }), gpus: [], usage: null },
      { task: task(), gpus: [held(0, 'GPU-a')], usage: null },
    ] });
    expect(s.queue).toEqual({ queued: 2, oldestTask: 'q1', oldestWaitSeconds: 9 });
    expect(s.slices.map((x) => x.task)).toEqual(['t1']);
  });
});

describe('a slice sampled from a real region file', () => {
  it("equals the region's accounting to the byte, through the supervisor's reading", async () => {
    const path = join(dir, 'region');
    await withRegionFixture(path, async () => {
      const supervisor = new Supervisor({ onEnd: () => {}, sampleMs: 10, pollMs: 60_000 });
      try {
        supervisor.watchSpawned('t1', 999_999, 1, join(dir, 'status'), path);
        await vi.waitFor(() => expect(supervisor.usage('t1')).not.toBeNull());
        const gpus = [h100(0, { uuid: 'GPU-a' }), h100(1, { uuid: 'GPU-b' })];
        const sample: MonitorSample = buildSample({ at: 1, hostname: 'h', gpus, tasks: [{ task: task(), gpus: [held(0, 'GPU-a'), held(1, 'GPU-b')], usage: supervisor.usage('t1') }] });
        // What the region says, summed here independently of the supervisor.
        const region = readRegion(path);
        for (const slice of sample.slices) {
          const ordinal = slice.gpu;
          const devs = region.slots.flatMap((s) => s.devices.filter((d) => d.device === ordinal));
          expect(slice.memoryUsedBytes).toBe(devs.reduce((n, d) => n + d.limitedBytes, 0));
          for (const kind of Object.keys(slice.memoryByKind) as (keyof typeof slice.memoryByKind)[]) {
            expect(slice.memoryByKind[kind]).toBe(devs.reduce((n, d) => n + d.bytes[kind], 0));
          }
          expect(slice.kernelLaunches).toBe(devs.reduce((n, d) => n + d.kernelsLaunched, 0));
          expect(slice.throttledSeconds).toBe(devs.reduce((n, d) => n + d.throttleNs, 0) / 1e9);
        }
        // And the fixture's known figures (src/gpu/region/reader.test.ts): 3,000,000 + 1 MiB + 64 KiB; 2 MiB + 12,345 + 777 (host bytes are not limited).
        expect(sample.slices.map((s) => s.memoryUsedBytes)).toEqual([3_000_000 + 1_048_576 + 65_536, 2_097_152 + 12_345 + 777]);
        expect(sample.slices[1]!.memoryByKind.host).toBe(999_999);
        expect(sample.slices[0]).toMatchObject({ computeShare: 0.5, kernelLaunches: 10, busySeconds: 5000 / 1e9 });
      } finally {
        supervisor.close();
      }
    });
  });
});

describe('Sampler', () => {
  it('publishes a sample at once and each period, and reports a failed reading without stopping', async () => {
    const published: MonitorSample[] = [];
    const errors: unknown[] = [];
    let fail = false;
    const sampler = new Sampler({
      backend: { gpus: () => { if (fail) throw new Error('NVML went away'); return [h100(0, { uuid: 'GPU-a' })]; } },
      daemon: { monitoredTasks: () => [] },
      publish: (s) => published.push(s),
      onError: (e) => errors.push(e),
      periodMs: 10,
      now: () => 42,
      hostname: 'node-1',
    });
    try {
      expect(published).toHaveLength(1);
      expect(published[0]).toMatchObject({ at: 42, hostname: 'node-1', gpus: [{ uuid: 'GPU-a' }] });
      fail = true;
      await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0));
      fail = false;
      const before = published.length;
      await vi.waitFor(() => expect(published.length).toBeGreaterThan(before));
      expect(sampler.cost().samples).toBeGreaterThanOrEqual(3);
    } finally {
      sampler.close();
    }
  });
});
