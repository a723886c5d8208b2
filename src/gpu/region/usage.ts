/**
 * A region's slots summed per device: what a task's (or a pod container's) processes hold on
 * each of its GPUs. The daemon's supervisor and the node agent's sampler both read regions
 * through this, so a slice's figures mean the same in both modes.
 */
import { REGION_KINDS, type RegionKind } from './layout.js';
import type { RegionSlotDevice } from './reader.js';

/** What a task's processes hold on one of its GPUs (ordinal as CUDA numbers them inside the task). */
export interface DeviceUsage {
  readonly device: number;
  /** Bytes of the limited kinds (what the limit sees), summed over its processes. */
  readonly memoryBytes: number;
  /** Recent achieved compute share, 0..1, summed over its processes. */
  readonly computeShare: number;
  /** Committed bytes of every kind, summed over its processes. */
  readonly bytesByKind: Readonly<Record<RegionKind, number>>;
  /** Totals of the processes attached now (a process's slot goes with it). */
  readonly kernelsLaunched: number;
  readonly busyNs: number;
  readonly throttleNs: number;
}

type MutableUsage = { -readonly [K in keyof DeviceUsage]: K extends 'bytesByKind' ? Record<RegionKind, number> : DeviceUsage[K] };

/** A region's slots summed per device ordinal, ordered by ordinal. Pure. */
export function usageByDevice(slots: readonly { readonly devices: readonly RegionSlotDevice[] }[]): DeviceUsage[] {
  const devices = new Map<number, MutableUsage>();
  for (const slot of slots) {
    for (const d of slot.devices) {
      let u = devices.get(d.device);
      if (u === undefined) {
        u = { device: d.device, memoryBytes: 0, computeShare: 0, bytesByKind: Object.fromEntries(REGION_KINDS.map((k) => [k, 0])) as Record<RegionKind, number>, kernelsLaunched: 0, busyNs: 0, throttleNs: 0 };
        devices.set(d.device, u);
      }
      u.memoryBytes += d.limitedBytes;
      u.computeShare += d.achievedShare;
      for (const k of REGION_KINDS) u.bytesByKind[k] += d.bytes[k];
      u.kernelsLaunched += d.kernelsLaunched;
      u.busyNs += d.busyNs;
      u.throttleNs += d.throttleNs;
    }
  }
  return [...devices.values()].sort((a, b) => a.device - b.device);
}
