/**
 * The score plugins. Each returns 0-1 (higher is better) so that policies can mix them by
 * weight without one plugin's scale drowning another's.
 */
import { demandOnGpus } from '../demand.js';
import type { CycleContext, PreparedScore, ScorePlugin } from '../framework.js';
import { fragAfter, fragAfterOne, fragIndex, type FragIndex, type FragState } from '../fragmentation.js';
import type { WorkloadModel } from '../workload.js';
import type { GpuSpec, NodeState, PlacementRequest } from '../types.js';

/** Utilisation of GPU `i` after adding `compute`/`memory` to it: mean of the compute and memory shares. */
function gpuUtilAfter(node: NodeState, i: number, compute: number, memory: number): number {
  const g = node.spec.gpus[i] as GpuSpec;
  const c = 1 - ((node.gpuComputeFree[i] ?? 0) - compute) / g.computeMilli;
  const m = 1 - ((node.gpuMemoryFree[i] ?? 0) - memory) / g.memoryBytes;
  return 0.5 * c + 0.5 * m;
}

/** Share of the node's GPU compute (or CPU, for CPU-only requests) in use after placing. */
function nodeUtilAfter(ctx: CycleContext, node: NodeState, gpus: readonly number[]): number {
  if (node.spec.gpus.length === 0 || ctx.demand.count === 0) {
    return node.spec.cpuMilli > 0 ? 1 - (node.cpuFree - ctx.request.cpuMilli) / node.spec.cpuMilli : 0;
  }
  const cap = node.computeCapacity;
  let taken = 0;
  for (const i of gpus) taken += ctx.demand.computeOn(node.spec.gpus[i] as GpuSpec);
  return cap > 0 ? 1 - (node.computeFreeTotal - taken) / cap : 0;
}

function packing(ctx: CycleContext, node: NodeState, gpus: readonly number[]): number {
  let gpuUtil = 0;
  for (const i of gpus) {
    const g = node.spec.gpus[i] as GpuSpec;
    gpuUtil += gpuUtilAfter(node, i, ctx.demand.computeOn(g), ctx.demand.memoryOn(g));
  }
  const perGpu = gpus.length > 0 ? gpuUtil / gpus.length : 0;
  return clamp01(0.5 * nodeUtilAfter(ctx, node, gpus) + 0.5 * perGpu);
}

/** Fill the busiest nodes and GPUs first, keeping whole nodes free for large requests. */
export const binpack: ScorePlugin = {
  name: 'binpack',
  gpuIdentity: false,
  prepare(ctx) {
    return {
      score: (node, gpus) => packing(ctx, node, gpus),
      gpu: (node, i) => gpuUtilAfter(node, i, 0, 0),
    };
  },
};

/** Least-loaded first: less interference between co-located slices. */
export const spread: ScorePlugin = {
  name: 'spread',
  gpuIdentity: false,
  prepare(ctx) {
    return {
      score: (node, gpus) => 1 - packing(ctx, node, gpus),
      gpu: (node, i) => 1 - gpuUtilAfter(node, i, 0, 0),
    };
  },
};

/**
 * The node whose CPU and GPU left over after placing are smallest (each normalised by the
 * largest node, weighted half and half, as in the FGD paper's best-fit baseline); within a
 * node, the tightest GPU.
 */
export const bestfit: ScorePlugin = {
  name: 'bestfit',
  gpuIdentity: false,
  prepare(ctx) {
    const { scale } = ctx.snapshot;
    const cpu = ctx.request.cpuMilli;
    return {
      score(node, gpus) {
        let taken = 0;
        let tight = 0;
        for (const i of gpus) {
          const g = node.spec.gpus[i] as GpuSpec;
          const c = ctx.demand.computeOn(g);
          taken += c;
          tight += 1 - ((node.gpuComputeFree[i] ?? 0) - c) / g.computeMilli;
        }
        const left = (0.5 * (node.cpuFree - cpu)) / scale.cpuMilli + (0.5 * (node.computeFreeTotal - taken)) / scale.computeMilli;
        // The GPU term only orders GPUs within a node: it is far below one milli of node score.
        const gpuTerm = gpus.length > 0 ? (1e-7 * tight) / gpus.length : 0;
        return clamp01(1 - left) * (1 - 1e-6) + gpuTerm;
      },
      gpu: (node, i) => 1 - (node.gpuComputeFree[i] ?? 0) / (node.spec.gpus[i] as GpuSpec).computeMilli,
    };
  },
};

/** No preference: every candidate ties, so the engine's seeded tie-break picks a node at random. */
export const random: ScorePlugin = {
  name: 'random',
  gpuIdentity: false,
  prepare: () => ({ score: () => 0 }),
};

/** How good a link is, 0-1: NVLink (more links better) over PCIe switch over host bridge over the system bus. */
export function linkQuality(level: string, nvlinks: number): number {
  switch (level) {
    case 'SELF':
      return 1;
    case 'NV':
      return 0.7 + 0.3 * Math.min(nvlinks, 18) / 18;
    case 'PIX':
      return 0.5;
    case 'PXB':
      return 0.4;
    case 'PHB':
      return 0.3;
    case 'NODE':
      return 0.2;
    default:
      return 0.05;
  }
}

function pairQualityOf(gpus: readonly GpuSpec[], a: number, b: number): number {
  const link = gpus[a]?.links.find((l) => l.gpu === b);
  if (link) return linkQuality(link.level, link.nvlinks);
  // No link data: the NUMA node is the next best hint of distance.
  const na = gpus[a]?.numaNode ?? null;
  const nb = gpus[b]?.numaNode ?? null;
  return na !== null && na === nb ? 0.3 : 0.1;
}

/** Pair qualities of a node's GPUs (row-major), by GPU list: links never change with usage. */
const pairCache = new WeakMap<readonly GpuSpec[], Float64Array>();

function pairMatrix(gpus: readonly GpuSpec[]): Float64Array {
  let m = pairCache.get(gpus);
  if (!m) {
    const n = gpus.length;
    m = new Float64Array(n * n);
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) m[a * n + b] = pairQualityOf(gpus, a, b);
    pairCache.set(gpus, m);
  }
  return m;
}

function pairQuality(node: NodeState, a: number, b: number): number {
  const gpus = node.spec.gpus;
  return pairMatrix(gpus)[a * gpus.length + b] as number;
}

function setQuality(node: NodeState, gpus: readonly number[]): number {
  if (gpus.length < 2) return 1;
  let sum = 0;
  let pairs = 0;
  for (let x = 0; x < gpus.length; x++) {
    for (let y = x + 1; y < gpus.length; y++) {
      sum += pairQuality(node, gpus[x] as number, gpus[y] as number);
      pairs += 1;
    }
  }
  return sum / pairs;
}

/**
 * What taking GPU i would break: its links to idle GPUs, if it is idle itself (a GPU already
 * in use has no idle pairing left to spoil).
 */
function linkValueOf(node: NodeState, i: number): number {
  if ((node.gpuSlices[i] ?? 0) > 0) return 0;
  const count = node.spec.gpus.length;
  const pairs = pairMatrix(node.spec.gpus);
  let v = 0;
  let n = 0;
  for (let j = 0; j < count; j++) {
    if (j === i) continue;
    n += 1;
    if ((node.gpuSlices[j] ?? 0) === 0) v += pairs[i * count + j] as number;
  }
  return n > 0 ? v / n : 0;
}

/** linkValueOf per node state and GPU (NaN: not yet known). */
const linkValues = new WeakMap<NodeState, Float64Array>();

/**
 * Topology: a multi-GPU slice on the best-connected set; a single-GPU slice on the GPU whose
 * links to idle GPUs are worth least, so well-connected groups stay whole for later.
 */
export const topology: ScorePlugin = {
  name: 'topology',
  gpuIdentity: true,
  prepare(ctx) {
    if (ctx.demand.count === 0 || !ctx.snapshot.hasTopology) return null;
    // linkValueOf depends on the node's state only, not on the request: kept per node state.
    let lastNode: NodeState | null = null;
    let values: Float64Array | null = null;
    const linkValue = (node: NodeState, i: number): number => {
      if (node !== lastNode || values === null) {
        lastNode = node;
        values = linkValues.get(node) ?? null;
        if (values === null) {
          values = new Float64Array(node.spec.gpus.length).fill(NaN);
          linkValues.set(node, values);
        }
      }
      let v = values[i] as number;
      if (v !== v) {
        v = linkValueOf(node, i);
        values[i] = v;
      }
      return v;
    };
    const prepared: PreparedScore = {
      gpuKey: linkValue,
      score(node, gpus) {
        if (gpus.length === 1) return 1 - linkValue(node, gpus[0] as number);
        return setQuality(node, gpus);
      },
      propose(node, feasible, count) {
        // Greedy growth from each seed GPU: cheap, and exact for the usual 2/4/8-GPU islands.
        const sets: number[][] = [];
        for (const seed of feasible) {
          const set = [seed];
          while (set.length < count) {
            let best = -1;
            let bestQ = -1;
            for (const c of feasible) {
              if (set.includes(c)) continue;
              let q = 0;
              for (const s of set) q += pairQuality(node, s, c);
              if (q > bestQ) {
                bestQ = q;
                best = c;
              }
            }
            if (best < 0) break;
            set.push(best);
          }
          if (set.length === count) sets.push(set.sort((a, b) => a - b));
        }
        return sets;
      },
    };
    return prepared;
  },
};

/** NUMA: all of a request's GPUs on one NUMA node. */
export const numa: ScorePlugin = {
  name: 'numa',
  gpuIdentity: true,
  prepare(ctx) {
    if (ctx.demand.count < 2 || !ctx.snapshot.hasTopology) return null;
    return {
      score(node, gpus) {
        const counts = new Map<number | null, number>();
        let top = 0;
        for (const i of gpus) {
          const k = node.spec.gpus[i]?.numaNode ?? null;
          const c = (counts.get(k) ?? 0) + 1;
          counts.set(k, c);
          top = Math.max(top, c);
        }
        return top / gpus.length;
      },
    };
  },
};

/**
 * A NodeState never changes, so its fragmentation index under one model doesn't either: a
 * committed placement rebuilds the index of the one node it changed, and a new workload model
 * those of the nodes scored after it.
 */
const fragCache = new WeakMap<NodeState, FragEntry>();

interface FragEntry {
  readonly model: WorkloadModel;
  readonly index: FragIndex;
  readonly state: FragState;
  /** Per request kind: fragmentation after placing one GPU's worth on GPU i (NaN: not yet known). */
  readonly memo: Map<string, Float64Array>;
}

function fragState(node: NodeState): FragState {
  return {
    cpuFree: node.cpuFree,
    memoryFree: node.memoryFree,
    gpus: node.spec.gpus,
    computeFree: node.gpuComputeFree,
    memoryFreeGpu: node.gpuMemoryFree,
    exclusive: node.gpuExclusive,
  };
}

/**
 * What a node-state memo of single-GPU answers is keyed by: the request's kind (GPU share,
 * CPU, isolation), which alone decides a score's answer on an unchanged node.
 */
export function requestKind(request: PlacementRequest): string {
  const s = request.slice;
  const mem = s.memory === null ? 'all' : s.memory.kind === 'bytes' ? `${s.memory.bytes}b` : `${s.memory.fraction}f`;
  return `${request.cpuMilli}/${s.compute}/${mem}/${s.isolation}/${s.migProfile}`;
}

/** A node state's single-GPU answers for one request kind (NaN: not yet known), made at first use. */
export function kindMemo(memos: Map<string, Float64Array>, kind: string, gpus: number): Float64Array {
  let memo = memos.get(kind);
  if (memo === undefined) {
    memo = new Float64Array(gpus).fill(NaN);
    memos.set(kind, memo);
  }
  return memo;
}

function indexOf(node: NodeState, model: WorkloadModel): FragEntry {
  const hit = fragCache.get(node);
  if (hit && hit.model === model) return hit;
  const state = fragState(node);
  const entry = { model, index: fragIndex(state, model), state, memo: new Map<string, Float64Array>() };
  fragCache.set(node, entry);
  return entry;
}

/**
 * A scorer from a node's fragmentation change: `score(delta)` where delta is the expected
 * fragmentation after placing minus before (milli-GPU), under the caller's workload model.
 */
function fragmentationScorer(ctx: CycleContext, model: WorkloadModel, score: (delta: number) => number): PreparedScore {
  const compute: number[] = [];
  const memory: number[] = [];
  // Fragmentation after placing depends on the node's state, the GPU and what the request
  // takes, so each node state keeps its answers per request kind (GPU share, CPU,
  // exclusivity): a replay sees a few dozen kinds, and all but one node are unchanged
  // between decisions, so most candidates are a lookup.
  const kind = requestKind(ctx.request);
  const exclusive = ctx.demand.exclusive;
  const cpu = ctx.request.cpuMilli;
  // The engine scores a node's candidates one after another: look its index up once.
  let lastNode: NodeState | null = null;
  let last: FragEntry | null = null;
  let memo: Float64Array | null = null;
  return {
    score(node, gpus) {
      if (node !== lastNode || last === null) {
        last = indexOf(node, model);
        lastNode = node;
        memo = null;
      }
      const { index, state } = last;
      if (gpus.length === 1) {
        const i = gpus[0] as number;
        memo ??= kindMemo(last.memo, kind, node.spec.gpus.length);
        let after = memo[i] as number;
        if (after !== after) {
          const g = node.spec.gpus[i] as GpuSpec;
          after = fragAfterOne(index, state, model, i, ctx.demand.computeOn(g), ctx.demand.memoryOn(g), cpu, exclusive);
          memo[i] = after;
        }
        return score(after - index.total);
      }
      demandOnGpus(ctx.demand, node, gpus, compute, memory);
      const after = fragAfter(index, state, model, gpus, compute, memory, cpu, exclusive);
      return score(after - index.total);
    },
  };
}

/**
 * Fragmentation-aware (FGD-style): the candidate that increases the node's expected
 * fragmentation least, under the workload model the caller estimated online. Linear in the
 * change (1/16,000 per milli-GPU at the trace's 8-GPU scale), so a small weight of another
 * plugin can order FGD's near-ties (see policy.ts).
 */
export const fragmentation: ScorePlugin = {
  name: 'fragmentation',
  gpuIdentity: false,
  prepare(ctx) {
    const model = ctx.workload;
    if (!model || model.shapes.length === 0) return null;
    const scale = ctx.snapshot.scale.computeMilli;
    return fragmentationScorer(ctx, model, (delta) => clamp01(0.5 - delta / (2 * scale)));
  },
};

/**
 * FGD as its authors' simulator scores it (hkust-adsl/kubernetes-scheduler-simulator,
 * fgd_score.go): int64(sigmoid((before - after) / 1000) * 100), an integer 0-100, here /100;
 * the GPU of a partial request is the first with the best score, whole GPUs the first free
 * ones, and node ties go to the name that sorts first (their vendored kube-scheduler's
 * selectHost, changed "for reproducibility"): tieMode `first`. The fragmentation measure is
 * the same as `fragmentation`'s (fragmentation.ts); what differs is the integer sigmoid score
 * and the tie-break. One difference stays: the typical pods come from the same online
 * estimate as `fragmentation` (the authors take them from the whole trace in advance).
 */
export const fgd: ScorePlugin = {
  name: 'fgd',
  gpuIdentity: false,
  tieMode: 'first',
  prepare(ctx) {
    const model = ctx.workload;
    if (!model || model.shapes.length === 0) return null;
    return fragmentationScorer(ctx, model, (delta) => Math.trunc(100 / (1 + Math.exp(delta / 1000))) / 100);
  },
};

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}
