/**
 * What a request takes from one GPU. The domain's SliceRequest speaks in shares and sizes; the
 * engine needs milli and bytes on a particular GPU, because a `50%` request is 40 GiB on an
 * H100 and 8 GiB on a T4.
 */
import { requestedBytesOn } from '../domain/index.js';
import { migProfileBytes, migSlicesOf } from './mig.js';
import type { GpuSpec, NodeState, PlacementRequest } from './types.js';

export interface Demand {
  /** GPUs wanted; 0 for a CPU-only task. */
  readonly count: number;
  /** Holds its GPUs alone (isolation `exclusive`). */
  readonly exclusive: boolean;
  /** Runs in a MIG instance (isolation `mig`). */
  readonly mig: boolean;
  readonly migProfile: string | null;
  /** Runs in an SM partition (isolation `sm-partition`; see plugins/partition.ts). */
  readonly partition: boolean;
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
  // Both depend on one number of the GPU only; clusters have few distinct ones and the engine
  // asks for every GPU it looks at, so the last answer is kept.
  let computeKey = -1;
  let computeValue = 0;
  let memoryKey = -1;
  let memoryValue = 0;
  return {
    count: s.gpus,
    exclusive,
    mig,
    migProfile: s.migProfile,
    partition: s.isolation === 'sm-partition',
    computeOn(gpu) {
      if (gpu.computeMilli === computeKey) return computeValue;
      computeKey = gpu.computeMilli;
      if (mig) computeValue = 0; // a MIG instance's compute is its own; see mig.ts
      else if (whole) computeValue = gpu.computeMilli;
      else computeValue = s.compute === null ? 0 : Math.round(s.compute * gpu.computeMilli);
      return computeValue;
    },
    memoryOn(gpu) {
      if (gpu.memoryBytes === memoryKey) return memoryValue;
      memoryKey = gpu.memoryBytes;
      if (mig && s.migProfile !== null) memoryValue = migProfileBytes(s.migProfile);
      else if (whole) memoryValue = gpu.memoryBytes;
      else memoryValue = requestedBytesOn(s, gpu.memoryBytes);
      return memoryValue;
    },
  };
}

/** Compute a MIG share is credited with: its slices' part of the GPU. */
export function migComputeMilli(profile: string, gpu: GpuSpec): number {
  const total = gpu.mig?.totalSlices ?? 7;
  return Math.round((migSlicesOf(profile) / total) * gpu.computeMilli);
}

/** `demand`'s compute and memory on `node`'s GPUs `gpus`, into `compute` and `memory` (arrays
 * the caller reuses between calls, made `gpus`' length here). */
export function demandOnGpus(demand: Demand, node: NodeState, gpus: readonly number[], compute: number[], memory: number[]): void {
  compute.length = gpus.length;
  memory.length = gpus.length;
  for (let j = 0; j < gpus.length; j++) {
    const g = node.spec.gpus[gpus[j] as number] as GpuSpec;
    compute[j] = demand.computeOn(g);
    memory[j] = demand.memoryOn(g);
  }
}
