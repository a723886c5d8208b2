/**
 * The FGD paper's replay (shared/traces/alibaba-gpu-v2023/README.md): shuffle the pod list with
 * the run's seed, append random copies of its rows until the GPU asked for reaches `inflate`
 * times the cluster's GPUs, then place pods one at a time, online: each is placed at once or
 * fails; no queue, no departures, no preemption. After each pod, `arrived` is the GPU asked for
 * so far (failed pods included) and `allocated` the GPU placed, both as shares of capacity.
 */
import { DecisionMemo } from '../memo.js';
import { schedule } from '../engine.js';
import { isPartitionReason } from '../explain.js';
import { nodeFragmentation } from '../fragmentation.js';
import type { Policy } from '../policy.js';
import { createPrng, shuffled } from '../prng.js';
import { buildSnapshot, withPlacement } from '../snapshot.js';
import type { ClusterSnapshot, Decision, GpuReason, NodeReason, NodeSpec, PlacementRequest } from '../types.js';
import { ShapeEstimator, type WorkloadModel } from '../workload.js';
import { podGpuMilli, podRequest, type PodIsolation, type TracePod } from './trace.js';

/** What happened to one arriving pod. */
export interface ReplayRecord {
  readonly seq: number;
  readonly pod: TracePod;
  /** Node name, or null when it failed. */
  readonly node: string | null;
  readonly gpus: readonly number[];
  /** Why it failed (the reason most nodes gave); null when placed. */
  readonly failure: FailureKind | null;
}

/**
 * Why a pod failed: the node reason most nodes gave, or for an SM-partition pod that found too
 * few GPUs, the partition reason most GPUs gave (`notPartitionable`, `noFreeSmRun`...).
 */
export type FailureKind = NodeReason['kind'] | GpuReason['kind'] | 'unresolvable';

export interface ReplayPoint {
  /** GPU asked for so far, % of capacity. */
  readonly arrived: number;
  /** GPU placed so far, % of capacity. */
  readonly allocated: number;
}

export interface ReplayResult {
  readonly policy: string;
  readonly seed: number;
  readonly pods: number;
  readonly capacityGpus: number;
  /** Allocation % at the first pod that brings arrivals to 100% (null if the run never gets there). */
  readonly allocatedAt100: number | null;
  /**
   * Allocation % at the first pod that brings arrivals to `inflate` x 100% (the paper's 130%
   * point): the end of the run when copies were appended to get there, earlier when the list
   * alone asks for more; the end of the run if arrivals never get there (no GPU pods).
   */
  readonly allocatedAtInflate: number;
  /** Allocation % at the end of the run. */
  readonly allocatedAtEnd: number;
  readonly arrivedAtEnd: number;
  /** Share of idle GPU capacity that typical requests cannot use, % (FGD's fragmentation ratio). */
  readonly fragmentationAt100: number | null;
  readonly fragmentationAtEnd: number;
  readonly failures: Readonly<Partial<Record<FailureKind, number>>>;
  /** One point per pod. */
  readonly curve: readonly ReplayPoint[];
  readonly records: readonly ReplayRecord[] | null;
}

export interface ReplayOptions {
  readonly policy: Policy;
  readonly seed: number;
  /** Arrivals to reach, as a multiple of capacity (1.3 in the paper). */
  readonly inflate: number;
  /** Keep every decision (for --placements). */
  readonly keepRecords?: boolean;
  /** Called every `progressEvery` pods with (done, total). */
  readonly onProgress?: (done: number, total: number) => void;
  readonly progressEvery?: number;
  /** Requests the workload estimate starts from (history from before the run); none by default. */
  readonly prior?: readonly TracePod[];
  /**
   * Whether arrivals update the workload estimate (true by default). False keeps the estimate
   * to `prior` alone: with the whole pod list as prior, the FGD artifact's typical pods, taken
   * from the whole trace in advance.
   */
  readonly learn?: boolean;
  /** Share of arrivals the estimated workload's shapes cover (ShapeEstimator's coverage; 0.95 by default). */
  readonly shapeCoverage?: number;
  /** The arrival order to replay as given (no shuffle, no copies); arrivals() of the list by default. */
  readonly order?: readonly TracePod[];
  /** Isolation of GPU-sharing pods whose row names none (the trace has no such column): time-slice by default. */
  readonly isolation?: PodIsolation;
}

/** The arrival order of one run: the shuffled list, then random copies up to `inflate` x capacity. */
export function arrivals(pods: readonly TracePod[], capacityMilli: number, inflate: number, seed: number): TracePod[] {
  const rng = createPrng(seed);
  const order = shuffled(pods, rng);
  let asked = order.reduce((s, p) => s + podGpuMilli(p), 0);
  const target = inflate * capacityMilli;
  const gpuPods = pods.filter((p) => podGpuMilli(p) > 0);
  if (gpuPods.length === 0) return order;
  while (asked < target) {
    const p = pods[rng.int(pods.length)] as TracePod;
    order.push(p);
    asked += podGpuMilli(p);
  }
  return order;
}

/** Cluster fragmentation ratio (%) under a workload model: fragment / idle GPU compute. */
export function clusterFragmentation(snapshot: ClusterSnapshot, model: WorkloadModel): number {
  let frag = 0;
  let idle = 0;
  for (const n of snapshot.nodes) {
    frag += nodeFragmentation(
      { cpuFree: n.cpuFree, memoryFree: n.memoryFree, gpus: n.spec.gpus, computeFree: n.gpuComputeFree, memoryFreeGpu: n.gpuMemoryFree, exclusive: n.gpuExclusive },
      model,
    );
    idle += n.computeFreeTotal;
  }
  return idle > 0 ? (100 * frag) / idle : 0;
}

/** Replays `pods` on `nodes` with one policy and seed. */
export function replay(nodes: readonly NodeSpec[], pods: readonly TracePod[], options: ReplayOptions): ReplayResult {
  let snapshot = buildSnapshot(nodes);
  const capacityMilli = nodes.reduce((s, n) => s + n.gpus.reduce((t, g) => t + g.computeMilli, 0), 0);
  const order = options.order ?? arrivals(pods, capacityMilli, options.inflate, options.seed);
  // The tie-break stream is separate from the shuffle's, so a policy's choices do not change the arrivals.
  const rng = createPrng((options.seed ^ 0x9e3779b9) >>> 0);
  const estimator = new ShapeEstimator(options.shapeCoverage);
  // Same decisions as without it; only the one node each placement changes is re-evaluated.
  const memo = new DecisionMemo();
  const sharing = options.isolation ?? 'time-slice';
  for (const [i, p] of (options.prior ?? []).entries()) estimator.observe(podRequest(p, `prior${i}`, sharing));
  const curve: ReplayPoint[] = [];
  const records: ReplayRecord[] | null = options.keepRecords ? [] : null;
  const failures: Partial<Record<FailureKind, number>> = {};
  const every = options.progressEvery ?? 500;
  let asked = 0;
  let placed = 0;
  let at100: number | null = null;
  let frag100: number | null = null;
  let atInflate: number | null = null;
  const inflateMilli = options.inflate * capacityMilli;

  for (let seq = 0; seq < order.length; seq++) {
    const pod = order[seq] as TracePod;
    const request = podRequest(pod, `${seq}`, sharing);
    if (options.learn !== false) estimator.observe(request);
    const workload = estimator.model();
    const decision = schedule(snapshot, request, { policy: options.policy, rng, workload, explain: false, memo });
    const milli = podGpuMilli(pod);
    asked += milli;
    let failure: FailureKind | null = null;
    if (decision.status === 'ok') {
      snapshot = withPlacement(snapshot, decision.placement);
      placed += milli;
    } else {
      failure = decision.status === 'unresolvable' ? 'unresolvable' : dominantReason(decision.rejections.map((r) => r.reason.kind));
      if (failure === 'tooFewGpus' && request.slice.isolation === 'sm-partition') failure = partitionFailure(snapshot, request, options.policy) ?? failure;
      failures[failure] = (failures[failure] ?? 0) + 1;
    }
    const point = { arrived: (100 * asked) / capacityMilli, allocated: (100 * placed) / capacityMilli };
    curve.push(point);
    if (at100 === null && point.arrived >= 100) {
      at100 = point.allocated;
      frag100 = clusterFragmentation(snapshot, workload);
    }
    // In milli, as arrivals() compares: the point where it would have stopped appending.
    if (atInflate === null && asked >= inflateMilli) atInflate = point.allocated;
    records?.push({
      seq,
      pod,
      node: decision.status === 'ok' ? decision.placement.node : null,
      gpus: decision.status === 'ok' ? decision.placement.gpus.map((g) => g.gpu) : [],
      failure,
    });
    if (options.onProgress && (seq + 1) % every === 0) options.onProgress(seq + 1, order.length);
  }
  const last = curve[curve.length - 1] ?? { arrived: 0, allocated: 0 };
  return {
    policy: options.policy.name,
    seed: options.seed,
    pods: order.length,
    capacityGpus: capacityMilli / 1000,
    allocatedAt100: at100,
    allocatedAtInflate: atInflate ?? last.allocated,
    allocatedAtEnd: last.allocated,
    arrivedAtEnd: last.arrived,
    fragmentationAt100: frag100,
    fragmentationAtEnd: clusterFragmentation(snapshot, estimator.model()),
    failures,
    curve,
    records,
  };
}

/**
 * The partition reason most GPUs gave for a failed sm-partition pod, or null when none did.
 * The replay decides without explanations (for speed); this asks again with them, on a PRNG of
 * its own so the run's tie-break stream is untouched (a failed decision draws the same either way).
 */
function partitionFailure(snapshot: ClusterSnapshot, request: PlacementRequest, policy: Policy): GpuReason['kind'] | null {
  const explained: Decision = schedule(snapshot, request, { policy, rng: createPrng(0), explain: true });
  if (explained.status !== 'unschedulable') return null;
  const counts = new Map<GpuReason['kind'], number>();
  for (const r of explained.rejections) {
    if (r.reason.kind !== 'tooFewGpus') continue;
    for (const g of r.reason.gpus) {
      if (isPartitionReason(g)) counts.set(g.kind, (counts.get(g.kind) ?? 0) + 1);
    }
  }
  let best: GpuReason['kind'] | null = null;
  for (const [kind, n] of counts) if (best === null || n > (counts.get(best) ?? 0)) best = kind;
  return best;
}

/** The reason most nodes gave (ties: the first kind seen). */
function dominantReason(kinds: readonly NodeReason['kind'][]): FailureKind {
  let cpu = 0;
  let memory = 0;
  let gpus = 0;
  for (const k of kinds) {
    if (k === 'insufficientCpu') cpu += 1;
    else if (k === 'insufficientMemory') memory += 1;
    else gpus += 1;
  }
  if (gpus >= cpu && gpus >= memory) return 'tooFewGpus';
  return cpu >= memory ? 'insufficientCpu' : 'insufficientMemory';
}
