/** Hand-made samples for the alert tests (a .case.ts: not built into dist): one GPU and optional slices, every figure settable. */
import type { GpuSample, MonitorSample, SliceSample } from '../../contract/monitor.js';

export const GIB = 1024 ** 3;

export function gpuSample(over: Partial<GpuSample> = {}): GpuSample {
  return {
    index: 0,
    uuid: 'GPU-aaaa',
    model: 'H100',
    health: 'ok',
    cordoned: false,
    memoryTotalBytes: 80 * GIB,
    memoryUsedBytes: 0,
    memoryFreeBytes: 80 * GIB,
    memoryReservedBytes: null,
    utilizationGpu: 0,
    utilizationMemory: 0,
    clockSmHz: null,
    clockMemoryHz: null,
    temperatureCelsius: 40,
    powerWatts: 100,
    powerLimitWatts: 700,
    energyJoules: null,
    throttleReasons: null,
    eccCorrectedErrors: 0,
    eccUncorrectedErrors: 0,
    xidErrors: 0,
    lastXid: null,
    pcieReplays: null,
    ...over,
  };
}

export function sliceSample(over: Partial<SliceSample> = {}): SliceSample {
  return {
    task: 'aaaaaaaaaaaa',
    tenant: 'team-a',
    gpu: 0,
    uuid: 'GPU-aaaa',
    state: 'running',
    memoryLimitBytes: 10 * GIB,
    memoryUsedBytes: 0,
    memoryByKind: { context: 0, alloc: 0, vmm: 0, array: 0, pool: 0, host: 0, graph: 0 },
    computeLimit: null,
    computeShare: null,
    busySeconds: 0,
    throttledSeconds: 0,
    kernelLaunches: 0,
    kubernetes: null,
    ...over,
  };
}

export function sample(at: number, over: Partial<MonitorSample> = {}): MonitorSample {
  return { at, hostname: 'host', gpus: [gpuSample()], slices: [], queue: { queued: 0, oldestTask: null, oldestWaitSeconds: null }, ...over };
}

/** A sample whose one GPU has this much of its memory used (0..1). */
export function memorySample(at: number, ratio: number): MonitorSample {
  const used = Math.round(ratio * 80 * GIB);
  return sample(at, { gpus: [gpuSample({ memoryUsedBytes: used, memoryFreeBytes: 80 * GIB - used })] });
}
