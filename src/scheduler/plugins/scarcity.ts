/**
 * Scarcity: keeps the nodes that can still take a multi-GPU request for the requests that need
 * them, in proportion to how likely those requests are to come before the cluster fills.
 *
 * A request for several whole GPUs of one node with much CPU (on the trace's default list, 8
 * GPUs and 64-120 cores: 0.5% of the pods, 6% of the GPU asked) fits only a node that is
 * nearly empty. Such requests are too rare to be typical shapes, so neither `fragmentation` nor
 * `capacity` sees them: small requests land on the last empty nodes of a kind and the large
 * ones that come later fail (default list, seed 42: 13 of the 44 8-GPU pods by 100% arrived,
 * 104 GPUs, the five asking 120 cores from 19% arrived on, once no 128-core node was whole).
 *
 * For every multi-GPU shape seen (workload.ts `wide`, learned online, however rare), the
 * cluster's units U (how many the nodes can still take: per node, GPUs that can hold one
 * GPU's worth, over the shape's GPU count, capped by free CPU and host memory) and the
 * expected demand D before the cluster fills: the shape's share of the GPU asked so far times
 * the cluster's free GPU compute, in units. With arrivals Poisson(D), the U-th unit is used with
 * probability P(X >= U); a placement that takes k units from a node costs the GPU those units
 * would have held times the chance each was needed (P(X >= U) + ... + P(X >= U - k + 1)).
 * Early, with many such nodes left, that is nothing; it grows as the last ones go.
 *
 * Score: 0.5 minus the expected GPU lost (milli) over twice the largest node's GPU compute, the
 * scale of `fragmentation`'s change, so that weight 1 weighs a milli-GPU lost as one of
 * fragmentation.
 */
import type { ScorePlugin } from '../framework.js';
import { shapeNeedsOnGpus } from '../fragmentation.js';
import { gpuUnitsOf } from './capacity.js';
import type { Shape, WideShape, WorkloadModel } from '../workload.js';
import type { GpuSpec, NodeState } from '../types.js';

/** Per GPU list and model: compute and memory one GPU's worth of each wide shape takes (-1: never there). */
interface WideNeeds {
  readonly model: WorkloadModel;
  readonly compute: Float64Array;
  readonly memory: Float64Array;
}

const needsCache = new WeakMap<readonly GpuSpec[], WideNeeds>();

function wideNeeds(gpus: readonly GpuSpec[], model: WorkloadModel, wide: readonly WideShape[]): WideNeeds {
  const hit = needsCache.get(gpus);
  if (hit && hit.model === model) return hit;
  const needs = { model, ...shapeNeedsOnGpus(gpus, wide.map((w) => w.shape)) };
  needsCache.set(gpus, needs);
  return needs;
}

/** Units of wide shape `s` a node holds with `gpuUnits` GPU units of it, `cpuFree` CPU and `memFree` host memory. */
function unitsOf(s: Omit<Shape, 'weight'>, gpuUnits: number, cpuFree: number, memFree: number): number {
  let u = Math.floor(gpuUnits / s.count);
  if (s.cpuMilli > 0) u = Math.min(u, Math.floor(Math.max(0, cpuFree) / s.cpuMilli));
  if (s.memoryBytes > 0) u = Math.min(u, Math.floor(Math.max(0, memFree) / s.memoryBytes));
  return u;
}

/** Per node state and model: units of each wide shape, and whether any is above 0. */
interface WideIndex {
  readonly model: WorkloadModel;
  readonly needs: WideNeeds;
  readonly units: Int32Array;
  readonly any: boolean;
}

const indexCache = new WeakMap<NodeState, WideIndex>();

export function wideIndex(node: NodeState, model: WorkloadModel, wide: readonly WideShape[]): WideIndex {
  const hit = indexCache.get(node);
  if (hit && hit.model === model) return hit;
  const gpus = node.spec.gpus;
  const n = gpus.length;
  const needs = wideNeeds(gpus, model, wide);
  const units = new Int32Array(wide.length);
  let any = false;
  for (let k = 0; k < wide.length; k++) {
    const s = (wide[k] as WideShape).shape;
    if (n < s.count) continue;
    let g = 0;
    for (let i = 0; i < n; i++) g += gpuUnitsOf(needs.compute[k * n + i] as number, needs.memory[k * n + i] as number, node.gpuComputeFree[i] ?? 0, node.gpuMemoryFree[i] ?? 0, node.gpuExclusive[i] ?? false);
    const u = unitsOf(s, g, node.cpuFree, node.memoryFree);
    units[k] = u;
    if (u > 0) any = true;
  }
  const index = { model, needs, units, any };
  indexCache.set(node, index);
  return index;
}

/**
 * P(X >= u - j) for j = 0..out.length-1, X ~ Poisson(d): the chance that the u-th, (u-1)-th...
 * unit is needed. Exact sums for small d, the normal approximation (continuity-corrected) above.
 */
export function poissonTails(d: number, u: number, out: Float64Array): void {
  if (d >= 40) {
    const sd = Math.sqrt(d);
    for (let j = 0; j < out.length; j++) out[j] = u - j <= 0 ? 1 : 1 - normalCdf((u - j - 0.5 - d) / sd);
    return;
  }
  // cdf[x] = P(X <= x), walked up to u - 1.
  let pmf = Math.exp(-d);
  let cdf = pmf;
  const lo = u - out.length; // out[j] needs P(X <= u - j - 1)
  for (let x = 0; x <= u - 1; x++) {
    if (x > 0) {
      pmf *= d / x;
      cdf += pmf;
    }
    const j = u - 1 - x;
    if (x >= lo && j >= 0 && j < out.length) out[j] = Math.max(0, 1 - cdf);
  }
  for (let j = 0; j < out.length; j++) if (u - j <= 0) out[j] = 1;
}

/** `d` rounded to the nearest power of 2^(1/16). */
export function quantize(d: number): number {
  return d > 0 ? Math.pow(2, Math.round(Math.log2(d) * 16) / 16) : 0;
}

function normalCdf(z: number): number {
  // Abramowitz-Stegun 7.1.26 on erf: absolute error under 1.5e-7.
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496735) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}

/**
 * The demand expected before the cluster fills, as a share of its free GPU compute. 0.5: the
 * best of 0.5 / 1 / 2 on the default list (policy.ts has the sweep); free compute overstates
 * what still comes, as the last few percent of a cluster are fragments few requests fit.
 */
const HORIZON = 0.5;
/** Most units one node can lose in one placement that are priced (8 GPUs over 2 per unit, and spare). */
const MAX_LOSS = 16;
/** A shape whose next unit is needed with less chance than this is left out of the decision. */
const NEGLIGIBLE = 1e-4;

export const scarcity: ScorePlugin = {
  name: 'scarcity',
  gpuIdentity: false,
  prepare(ctx) {
    const model = ctx.workload;
    const wide = model?.wide;
    if (!model || !wide || wide.length === 0) return null;
    const nodes = ctx.snapshot.nodes;
    const units = new Float64Array(wide.length);
    let free = 0;
    for (const node of nodes) {
      free += node.computeFreeTotal;
      const index = wideIndex(node, model, wide);
      if (!index.any) continue;
      for (let k = 0; k < wide.length; k++) units[k] = (units[k] as number) + (index.units[k] as number);
    }
    // Per shape still worth pricing: its tails (the chance the U-th, (U-1)-th... unit is needed) times the GPU of a unit.
    const active: number[] = [];
    const cost: Float64Array[] = [];
    let key = 'scarcity:';
    for (let k = 0; k < wide.length; k++) {
      const w = wide[k] as WideShape;
      const u = units[k] as number;
      const unitMilli = w.shape.count * w.shape.computeShare * 1000;
      if (u === 0 || unitMilli === 0) continue;
      // D on a grid of 1/16 in log scale (6%), so that a score changes by steps.
      const d = quantize((HORIZON * w.share * free) / unitMilli);
      const tails = new Float64Array(Math.min(MAX_LOSS, u));
      poissonTails(d, u, tails);
      if ((tails[0] as number) < NEGLIGIBLE) continue;
      // Cumulative: cost of losing j + 1 units.
      let c = 0;
      for (let j = 0; j < tails.length; j++) {
        c += (tails[j] as number) * unitMilli;
        tails[j] = c;
      }
      active.push(k);
      cost.push(tails);
      key += `${k},`;
    }
    if (active.length === 0) return null;
    const scale = ctx.snapshot.scale.computeMilli;
    const cpu = ctx.request.cpuMilli;
    const demand = ctx.demand;
    const exclusive = demand.exclusive;
    // A node holding no unit of an active shape scores 0.5 whatever the cluster's state: the
    // memo may keep it under the set of active shapes (the key). The others are volatile.
    const volatile = (node: NodeState): boolean => {
      const index = wideIndex(node, model, wide);
      if (!index.any) return false;
      for (const k of active) if ((index.units[k] as number) > 0) return true;
      return false;
    };
    return {
      memoKey: key,
      volatile,
      score(node, gpus) {
        const index = wideIndex(node, model, wide);
        if (!index.any) return 0.5;
        const n = node.spec.gpus.length;
        const needs = index.needs;
        let lost = 0;
        for (let a = 0; a < active.length; a++) {
          const k = active[a] as number;
          const before = index.units[k] as number;
          if (before === 0) continue;
          const s = (wide[k] as WideShape).shape;
          let g = 0;
          for (let i = 0; i < n; i++) {
            const ki = k * n + i;
            let c = node.gpuComputeFree[i] ?? 0;
            let m = node.gpuMemoryFree[i] ?? 0;
            let x = node.gpuExclusive[i] ?? false;
            if (gpus.includes(i)) {
              const spec = node.spec.gpus[i] as GpuSpec;
              c -= demand.computeOn(spec);
              m -= demand.memoryOn(spec);
              x = x || exclusive;
            }
            g += gpuUnitsOf(needs.compute[ki] as number, needs.memory[ki] as number, c, m, x);
          }
          const after = unitsOf(s, g, node.cpuFree - cpu, node.memoryFree);
          const loss = before - after;
          if (loss > 0) {
            const table = cost[a] as Float64Array;
            lost += table[Math.min(loss, table.length) - 1] as number;
          }
        }
        const v = 0.5 - lost / (2 * scale);
        return v < 0 ? 0 : v > 1 ? 1 : v;
      },
    };
  },
};
