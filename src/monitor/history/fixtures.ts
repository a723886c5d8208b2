/**
 * Hand-made samples for history's tests and benchmark: G GPUs and S slices, with figures that vary
 * with time, at NVML's granularity (utilization in whole percent, temperature in whole degrees,
 * power in milliwatts), so their JSON is as long as a real GPU's.
 */
import type { GpuSample, MonitorSample, SliceSample } from '../../contract/monitor.js';

const GIB = 1024 ** 3;

export function fleetSample(at: number, gpus: number, slices: number, tenants = 4, queued = 0): MonitorSample {
  const phase = (k: number): number => (Math.sin(at / 7_000 + k) + 1) / 2;
  const gpuList: GpuSample[] = Array.from({ length: gpus }, (_, i) => ({
    index: i, uuid: `GPU-${i}`, model: 'H100', health: 'ok', cordoned: false,
    memoryTotalBytes: 80 * GIB, memoryUsedBytes: Math.round(phase(i) * 60 * GIB), memoryFreeBytes: Math.round((1 - phase(i)) * 60 * GIB + 20 * GIB), memoryReservedBytes: 0,
    utilizationGpu: Math.round(phase(i + 1) * 100) / 100, utilizationMemory: Math.round(phase(i + 2) * 100) / 100, clockSmHz: 1.98e9, clockMemoryHz: 2.6e9, temperatureCelsius: Math.round(40 + 30 * phase(i)), powerWatts: Math.round(100_000 + 500_000 * phase(i)) / 1000, powerLimitWatts: 700,
    energyJoules: at / 10, throttleReasons: [], eccCorrectedErrors: 0, eccUncorrectedErrors: 0, xidErrors: 0, lastXid: null, pcieReplays: 0,
  }));
  const sliceList: SliceSample[] = Array.from({ length: slices }, (_, j) => {
    const used = Math.round(phase(j + 3) * 8 * GIB);
    return {
      task: `task${String(j).padStart(8, '0')}`, tenant: `tenant${j % tenants}`, gpu: j % Math.max(1, gpus), uuid: `GPU-${j % Math.max(1, gpus)}`, state: 'running',
      memoryLimitBytes: 10 * GIB, memoryUsedBytes: used, memoryByKind: { context: 0, alloc: used, vmm: 0, array: 0, pool: 0, host: 0, graph: 0 },
      computeLimit: 0.25, computeShare: Math.round(250 * phase(j)) / 1000, busySeconds: 0, throttledSeconds: 0, kernelLaunches: 0, kubernetes: null,
    };
  });
  return { at, hostname: 'bench', gpus: gpuList, slices: sliceList, queue: { queued, oldestTask: null, oldestWaitSeconds: null } };
}
