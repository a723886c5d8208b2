/**
 * Capacity: how many of the typical requests a node could still take, and how many a placement
 * takes away. For each typical shape of the learned workload mix (workload.ts, learned online
 * from arrivals), the units a node can hold are the units its GPUs can hold (per GPU, whole
 * multiples of the shape's compute share and GPU memory; a multi-GPU shape needs `count` such
 * GPUs per unit), capped by the units its free CPU can feed. The node's capacity is the expected
 * number of typical requests that still fit: the sum over shapes of units x the shape's
 * frequency. A placement costs the capacity it removes: about one request where it fits the mix,
 * more where it breaks a GPU's remainder into pieces the mix cannot use, or takes the CPU that
 * the node's idle GPUs needed. FGD's fragmentation sees neither: a GPU counts as usable as soon
 * as it holds one unit of a shape, however many it held before, and a node's CPU only once it
 * falls below a shape's.
 *
 * Score: 0.5 minus the requests lost x 1000 over twice the largest node's GPU compute (milli),
 * so that one typical request lost weighs what 1000 milli-GPU of `fragmentation`'s change does.
 */
import { demandOnGpus } from '../demand.js';
import type { CycleContext, ScorePlugin } from '../framework.js';
import { kindMemo, requestKind } from './scores.js';
import { fragNeeds, type FragNeeds } from '../fragmentation.js';
import type { Shape, WorkloadModel } from '../workload.js';
import type { NodeState } from '../types.js';

/** Per node state and model: units per shape x GPU, their sums per shape, and the capacity. */
interface CapIndex {
  readonly model: WorkloadModel;
  readonly needs: FragNeeds;
  /** Shape-major: units of shape k GPU i holds now. */
  readonly perGpu: Int32Array;
  /** Per shape: sum of perGpu over the node's GPUs. */
  readonly gpuUnits: Int32Array;
  readonly total: number;
  /** Per request kind: capacity after placing one GPU's worth on GPU i (NaN: not yet known). */
  readonly memo: Map<string, Float64Array>;
}

const cache = new WeakMap<NodeState, CapIndex>();

/** Units of one GPU's worth of a shape a GPU holds with `free` compute and `mem` memory left (need c, m; c < 0: never). */
export function gpuUnitsOf(c: number, m: number, free: number, mem: number, exclusive: boolean): number {
  if (c < 0 || exclusive) return 0;
  const byCompute = c > 0 ? Math.floor(free / c) : Infinity;
  const byMemory = m > 0 ? Math.floor(mem / m) : Infinity;
  const u = Math.min(byCompute, byMemory);
  return u === Infinity ? 1 : Math.max(0, u);
}

/** Units of shape `s` a node holds with `gpuUnits` GPU units of it and `cpuFree` CPU. */
function unitsOf(s: Shape, gpuUnits: number, cpuFree: number): number {
  const units = Math.floor(gpuUnits / s.count);
  return s.cpuMilli > 0 ? Math.min(units, Math.floor(Math.max(0, cpuFree) / s.cpuMilli)) : units;
}

export function capIndex(node: NodeState, model: WorkloadModel): CapIndex {
  const hit = cache.get(node);
  if (hit && hit.model === model) return hit;
  const shapes = model.shapes;
  const gpus = node.spec.gpus;
  const n = gpus.length;
  const needs = fragNeeds(gpus, model);
  const perGpu = new Int32Array(shapes.length * n);
  const gpuUnits = new Int32Array(shapes.length);
  for (let k = 0; k < shapes.length; k++) {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const u = gpuUnitsOf(needs.compute[k * n + i] as number, needs.memory[k * n + i] as number, node.gpuComputeFree[i] ?? 0, node.gpuMemoryFree[i] ?? 0, node.gpuExclusive[i] ?? false);
      perGpu[k * n + i] = u;
      sum += u;
    }
    gpuUnits[k] = sum;
  }
  let total = 0;
  for (let k = 0; k < shapes.length; k++) {
    const s = shapes[k] as Shape;
    if (s.count > 0) total += s.weight * unitsOf(s, gpuUnits[k] as number, node.cpuFree) * 1000;
  }
  const index = { model, needs, perGpu, gpuUnits, total, memo: new Map<string, Float64Array>() };
  cache.set(node, index);
  return index;
}

/** Capacity after placing `compute[j]`/`memory[j]` on GPU `gpus[j]` and `cpu` on the node. */
export function capacityAfter(
  index: CapIndex,
  node: NodeState,
  gpus: readonly number[],
  compute: ArrayLike<number>,
  memory: ArrayLike<number>,
  cpu: number,
  exclusive: boolean,
): number {
  const n = node.spec.gpus.length;
  const { needs, perGpu, gpuUnits } = index;
  const shapes = index.model.shapes;
  const cpuFree = node.cpuFree - cpu;
  let total = 0;
  for (let k = 0; k < shapes.length; k++) {
    const s = shapes[k] as Shape;
    if (s.count === 0) continue;
    let u = gpuUnits[k] as number;
    for (let j = 0; j < gpus.length; j++) {
      const i = gpus[j] as number;
      const ki = k * n + i;
      u -= perGpu[ki] as number;
      if (!exclusive) u += gpuUnitsOf(needs.compute[ki] as number, needs.memory[ki] as number, (node.gpuComputeFree[i] ?? 0) - (compute[j] ?? 0), (node.gpuMemoryFree[i] ?? 0) - (memory[j] ?? 0), node.gpuExclusive[i] ?? false);
    }
    total += s.weight * unitsOf(s, u, cpuFree) * 1000;
  }
  return total;
}

export const capacity: ScorePlugin = {
  name: 'capacity',
  gpuIdentity: false,
  prepare(ctx: CycleContext) {
    const model = ctx.workload;
    if (!model || model.shapes.length === 0) return null;
    const scale = ctx.snapshot.scale.computeMilli;
    const cpu = ctx.request.cpuMilli;
    const exclusive = ctx.demand.exclusive;
    // As fragmentation's scorer does: a node state keeps its single-GPU answers per request
    // kind, so the many nodes a decision leaves unchanged are a lookup at the next one.
    const kind = requestKind(ctx.request);
    const compute: number[] = [];
    const memory: number[] = [];
    const one = [0];
    return {
      score(node, gpus) {
        const index = capIndex(node, model);
        let after: number;
        if (gpus.length === 1) {
          const i = gpus[0] as number;
          const memo = kindMemo(index.memo, kind, node.spec.gpus.length);
          after = memo[i] as number;
          if (after !== after) {
            one[0] = i;
            demandOnGpus(ctx.demand, node, one, compute, memory);
            after = capacityAfter(index, node, one, compute, memory, cpu, exclusive);
            memo[i] = after;
          }
        } else {
          demandOnGpus(ctx.demand, node, gpus, compute, memory);
          after = capacityAfter(index, node, gpus, compute, memory, cpu, exclusive);
        }
        const v = 0.5 - (index.total - after) / (2 * scale);
        return v < 0 ? 0 : v > 1 ? 1 : v;
      },
    };
  },
};
