/** GPU inventories for Kubernetes tests: an 80 GB H100 as NVML reports it, overridable per field. */
import type { Gpu } from '../../src/domain/gpu.js';

const MIB = 2 ** 20;

/** An H100 80GB HBM3 at `index` (NVML reports 81559 MiB); `over` replaces any field. */
export function h100(index: number, over: Partial<Gpu> = {}): Gpu {
  const hex = index.toString(16).padStart(2, '0');
  return {
    index,
    uuid: `GPU-${hex}6f1c2a-9b3d-4e5f-8a7b-1c2d3e4f50${hex}`,
    name: 'NVIDIA H100 80GB HBM3',
    model: 'H100-80GB',
    health: 'ok',
    memoryTotalBytes: 81559 * MIB,
    memoryUsedBytes: 0,
    memoryFreeBytes: 81559 * MIB,
    memoryReservedBytes: null,
    utilizationGpu: null,
    utilizationMemory: null,
    temperatureC: null,
    powerDrawWatts: null,
    powerLimitWatts: null,
    clockSmMHz: null,
    clockMemoryMHz: null,
    maxClockSmMHz: null,
    maxClockMemoryMHz: null,
    pciBusId: `00000000:${((0x19 + index * 0x10) % 0x100).toString(16).toUpperCase().padStart(2, '0')}:00.0`,
    numaNode: index < 4 ? 0 : 1,
    computeCapability: '9.0',
    multiprocessorCount: 132,
    migMode: 'disabled',
    migDevices: [],
    processes: [],
    eccErrors: null,
    clockEventReasons: [],
    energyJoules: null,
    pcieReplays: null,
    xidErrors: null,
    lastXid: null,
    topology: [],
    ...over,
  };
}

export const DRIVER_FACTS = { driverVersion: '580.65.06', cudaDriverVersion: '13.0' } as const;
