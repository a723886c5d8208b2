/**
 * Expected fragmentation of a node (FGD, USENIX ATC'23): the idle GPU compute that typical
 * requests could not use, weighted by how often each typical request arrives. For one shape:
 * - if the node cannot host the shape at all (too little CPU, too few GPUs that fit it, or a
 *   CPU-only shape), all its idle GPU compute is a fragment to that shape;
 * - otherwise the idle compute of the GPUs that cannot hold one unit of the shape is.
 * Placing a request where it increases this the least keeps capacity usable for what comes.
 */
import { resolveMemory } from '../domain/index.js';
import type { Shape, WorkloadModel } from './workload.js';
import type { GpuSpec } from './types.js';

/** The parts of a node's state fragmentation depends on (so a candidate can be scored without building a NodeState). */
export interface FragState {
  readonly cpuFree: number;
  readonly memoryFree: number;
  readonly gpus: readonly GpuSpec[];
  readonly computeFree: ArrayLike<number>;
  readonly memoryFreeGpu: ArrayLike<number>;
  readonly exclusive: readonly boolean[];
}

/** Whether a GPU with `computeFree`/`memoryFree` left can hold one GPU's worth of `shape`. */
export function hostsShape(gpu: GpuSpec, computeFree: number, memoryFree: number, exclusive: boolean, shape: Shape): boolean {
  if (exclusive) return false;
  if (computeFree < Math.round(shape.computeShare * gpu.computeMilli)) return false;
  const memNeed = shape.gpuMemory === null ? gpu.memoryBytes : resolveMemory(shape.gpuMemory, gpu.memoryBytes);
  if (memoryFree < memNeed) return false;
  return shape.models.length === 0 || modelSelected(gpu, shape.models);
}

/** Whether a lower-case include list names the GPU (part of its model or name, as selectors match). */
export function modelSelected(gpu: GpuSpec, models: readonly string[]): boolean {
  const m = gpu.model.toLowerCase();
  const n = gpu.name.toLowerCase();
  return models.some((x) => m.includes(x) || n.includes(x));
}

/**
 * Fragmentation (milli of GPU compute) of the node state for one shape. Host memory is left
 * out, as in FGD: shapes are keyed without it, so a shape has no single memory size to test.
 */
export function shapeFragmentation(s: FragState, shape: Shape): number {
  let idle = 0;
  let stranded = 0;
  let hosts = 0;
  for (let i = 0; i < s.gpus.length; i++) {
    const gpu = s.gpus[i] as GpuSpec;
    if (gpu.health !== 'ok' || gpu.mig !== null) continue;
    const free = s.computeFree[i] ?? 0;
    idle += free;
    if (shape.count > 0 && hostsShape(gpu, free, s.memoryFreeGpu[i] ?? 0, s.exclusive[i] ?? false, shape)) hosts += 1;
    else stranded += free;
  }
  if (shape.count === 0) return idle;
  if (hosts < shape.count || s.cpuFree < shape.cpuMilli) return idle;
  return stranded;
}

/** Expected fragmentation of a node state under the workload model. */
export function nodeFragmentation(s: FragState, model: WorkloadModel): number {
  let f = 0;
  for (const shape of model.shapes) f += shape.weight * shapeFragmentation(s, shape);
  return f;
}

/**
 * What each shape needs of each GPU of a node, worked out once per node and workload model:
 * per shape x GPU (shape-major), the compute and memory one unit of the shape takes there, or
 * -1 where it can never go (unhealthy or MIG GPU, model not selected, CPU-only shape). Turns
 * hostsShape's per-call rounding, memory resolution and model matching into two comparisons.
 */
export interface FragNeeds {
  readonly model: WorkloadModel;
  readonly compute: Float64Array;
  readonly memory: Float64Array;
}

/** Needs by GPU list (a NodeSpec's `gpus` never changes, whatever the node's usage). */
const needsCache = new WeakMap<readonly GpuSpec[], FragNeeds>();

export function fragNeeds(gpus: readonly GpuSpec[], model: WorkloadModel): FragNeeds {
  const hit = needsCache.get(gpus);
  if (hit && hit.model === model) return hit;
  const needs = { model, ...shapeNeedsOnGpus(gpus, model.shapes) };
  needsCache.set(gpus, needs);
  return needs;
}

/**
 * Per shape k and GPU i, at [k * gpus.length + i], the compute (milli) and GPU memory (bytes) one
 * unit of the shape takes on that GPU, -1 where it can never go (unhealthy or MIG GPU, model not
 * selected, CPU-only shape). The fragmentation and scarcity scores' needs tables.
 */
export function shapeNeedsOnGpus(
  gpus: readonly GpuSpec[],
  shapes: readonly Omit<Shape, 'weight'>[],
): { compute: Float64Array; memory: Float64Array } {
  const n = gpus.length;
  const compute = new Float64Array(shapes.length * n).fill(-1);
  const memory = new Float64Array(shapes.length * n).fill(-1);
  for (let k = 0; k < shapes.length; k++) {
    const shape = { ...(shapes[k] as Omit<Shape, 'weight'>), weight: 0 } as Shape;
    if (shape.count === 0) continue;
    for (let i = 0; i < n; i++) {
      const g = gpus[i] as GpuSpec;
      if (g.health !== 'ok' || g.mig !== null) continue;
      // hostsShape with all of the GPU free: false only when the model is not selected.
      if (!hostsShape(g, g.computeMilli, Infinity, false, shape)) continue;
      compute[k * n + i] = Math.round(shape.computeShare * g.computeMilli);
      memory[k * n + i] = shape.gpuMemory === null ? g.memoryBytes : resolveMemory(shape.gpuMemory, g.memoryBytes);
    }
  }
  return { compute, memory };
}

/**
 * Per-shape parts of a node's fragmentation, so that the fragmentation after placing a
 * request on a few GPUs is found by updating those GPUs' terms rather than rescanning the node.
 */
export interface FragIndex {
  readonly total: number;
  readonly idle: number;
  /** Per shape: GPUs that can hold one unit, and the idle compute of those that cannot. */
  readonly hosts: Int32Array;
  readonly stranded: Float64Array;
  /** Per shape x GPU (shape-major): whether the GPU holds one unit now. */
  readonly hostsGpu: Uint8Array;
  readonly needs: FragNeeds;
}

export function fragIndex(s: FragState, model: WorkloadModel): FragIndex {
  const shapes = model.shapes;
  const n = s.gpus.length;
  const needs = fragNeeds(s.gpus, model);
  const needC = needs.compute;
  const needM = needs.memory;
  const hosts = new Int32Array(shapes.length);
  const stranded = new Float64Array(shapes.length);
  const hostsGpu = new Uint8Array(shapes.length * n);
  let idle = 0;
  for (let i = 0; i < n; i++) {
    const g = s.gpus[i] as GpuSpec;
    if (g.health === 'ok' && g.mig === null) idle += s.computeFree[i] ?? 0;
  }
  let total = 0;
  for (let k = 0; k < shapes.length; k++) {
    const shape = shapes[k] as Shape;
    let h = 0;
    let st = 0;
    for (let i = 0; i < n; i++) {
      const g = s.gpus[i] as GpuSpec;
      if (g.health !== 'ok' || g.mig !== null) continue;
      const free = s.computeFree[i] ?? 0;
      const c = needC[k * n + i] as number;
      if (c >= 0 && !(s.exclusive[i] ?? false) && free >= c && (s.memoryFreeGpu[i] ?? 0) >= (needM[k * n + i] as number)) {
        h += 1;
        hostsGpu[k * n + i] = 1;
      } else st += free;
    }
    hosts[k] = h;
    stranded[k] = st;
    const f = shape.count === 0 || h < shape.count || s.cpuFree < shape.cpuMilli ? idle : st;
    total += shape.weight * f;
  }
  return { total, idle, hosts, stranded, hostsGpu, needs };
}

/**
 * Fragmentation after taking `compute[j]`/`memory[j]` from GPU `gpus[j]` and `cpu` from the
 * node (`exclusive`: the GPUs become unusable to others), from the index of the state before.
 * The GPUs are ones the request may use: healthy, and without MIG (a MIG GPU is outside the
 * accounting, so taking from it changes only the node's CPU).
 */
export function fragAfter(
  before: FragIndex,
  s: FragState,
  model: WorkloadModel,
  gpus: readonly number[],
  compute: ArrayLike<number>,
  memory: ArrayLike<number>,
  cpu: number,
  exclusive: boolean,
): number {
  const shapes = model.shapes;
  const n = s.gpus.length;
  const needC = before.needs.compute;
  const needM = before.needs.memory;
  const hostsGpu = before.hostsGpu;
  let idle = before.idle;
  for (let j = 0; j < gpus.length; j++) {
    const g = s.gpus[gpus[j] as number] as GpuSpec;
    if (g.mig === null) idle -= compute[j] ?? 0;
  }
  const cpuFree = s.cpuFree - cpu;
  let total = 0;
  for (let k = 0; k < shapes.length; k++) {
    const shape = shapes[k] as Shape;
    if (shape.count === 0) {
      total += shape.weight * idle;
      continue;
    }
    let h = before.hosts[k] as number;
    let st = before.stranded[k] as number;
    for (let j = 0; j < gpus.length; j++) {
      const i = gpus[j] as number;
      const ki = k * n + i;
      const c = needC[ki] as number;
      if (c < 0 && (s.gpus[i] as GpuSpec).mig !== null) continue;
      const free = s.computeFree[i] ?? 0;
      const freeAfter = free - (compute[j] ?? 0);
      if (hostsGpu[ki] === 1) h -= 1;
      else st -= free;
      if (!exclusive && c >= 0 && !(s.exclusive[i] ?? false) && freeAfter >= c && (s.memoryFreeGpu[i] ?? 0) - (memory[j] ?? 0) >= (needM[ki] as number)) h += 1;
      else st += freeAfter;
    }
    const f = h < shape.count || cpuFree < shape.cpuMilli ? idle : st;
    total += shape.weight * f;
  }
  return total;
}

/** fragAfter for a request on one GPU (the common case), without the per-GPU arrays; same result. */
export function fragAfterOne(before: FragIndex, s: FragState, model: WorkloadModel, i: number, compute: number, memory: number, cpu: number, exclusive: boolean): number {
  const shapes = model.shapes;
  const n = s.gpus.length;
  const needC = before.needs.compute;
  const needM = before.needs.memory;
  const hostsGpu = before.hostsGpu;
  const mig = (s.gpus[i] as GpuSpec).mig !== null;
  const idle = mig ? before.idle : before.idle - compute;
  const cpuFree = s.cpuFree - cpu;
  const free = s.computeFree[i] ?? 0;
  const freeAfter = free - compute;
  const memAfter = (s.memoryFreeGpu[i] ?? 0) - memory;
  const usable = !exclusive && !(s.exclusive[i] ?? false);
  let total = 0;
  for (let k = 0; k < shapes.length; k++) {
    const shape = shapes[k] as Shape;
    if (shape.count === 0) {
      total += shape.weight * idle;
      continue;
    }
    let h = before.hosts[k] as number;
    let st = before.stranded[k] as number;
    const ki = k * n + i;
    const c = needC[ki] as number;
    if (!(c < 0 && mig)) {
      if (hostsGpu[ki] === 1) h -= 1;
      else st -= free;
      if (usable && c >= 0 && freeAfter >= c && memAfter >= (needM[ki] as number)) h += 1;
      else st += freeAfter;
    }
    const f = h < shape.count || cpuFree < shape.cpuMilli ? idle : st;
    total += shape.weight * f;
  }
  return total;
}
