/**
 * What a request takes from one GPU. The domain's SliceRequest speaks in shares and sizes; the
 * engine needs milli and bytes on a particular GPU, because a `50%` request is 40 GiB on an
 * H100 and 8 GiB on a T4.
 */
import { requestedBytesOn } from '../domain/index.js';
import { migProfileBytes, migSlicesOf } from './mig.js';
import type { GpuSpec, PlacementRequest } from './types.js';

export interface Demand {
  /** GPUs wanted; 0 for a CPU-only task. */
  readonly count: number;
  /** Holds its GPUs alone (isolation `exclusive`). */
  readonly exclusive: boolean;
  /** Runs in a MIG instance (isolation `mig`). */
  readonly mig: boolean;
  readonly migProfile: string | null;
  /** Compute in milli on `gpu`. */
  computeOn(gpu: GpuSpec): number;
  /** Memory in bytes on `gpu`. */
  memoryOn(gpu: GpuSpec): number;
}

/**
 * Compute a slice reserves. With no compute limit, a slice that also takes all the memory
 * takes the whole GPU; one with a memory limit reserves no compute (best effort, like HAMi's
 * default of no core limit), so memory alone decides how many such slices share a GPU.
 */
export function demandOf(request: PlacementRequest): Demand {
  const s = request.slice;
  const exclusive = s.isolation === 'exclusive';
  const mig = s.isolation === 'mig';
  const whole = exclusive || (s.memory === null && s.compute === null);
  return {
    count: s.gpus,
    exclusive,
    mig,
    migProfile: s.migProfile,
    computeOn(gpu) {
      if (mig) return 0; // a MIG instance's compute is its own; see mig.ts
      if (whole) return gpu.computeMilli;
      return s.compute === null ? 0 : Math.round(s.compute * gpu.computeMilli);
    },
    memoryOn(gpu) {
      if (mig && s.migProfile !== null) return migProfileBytes(s.migProfile);
      if (whole) return gpu.memoryBytes;
      return requestedBytesOn(s, gpu.memoryBytes);
    },
  };
}

/** Compute a MIG share is credited with: its slices' part of the GPU. */
export function migComputeMilli(profile: string, gpu: GpuSpec): number {
  const total = gpu.mig?.totalSlices ?? 7;
  return Math.round((migSlicesOf(profile) / total) * gpu.computeMilli);
}
