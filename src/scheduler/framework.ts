/**
 * The plugin contract, after kube-scheduler's framework: admission, filter and score plugins.
 * Each plugin's `prepare()` runs once per decision and returns a typed object closed over
 * whatever it precomputed for this request (or null: "nothing to do for this request"), so the
 * per-node hot path never looks anything up by string.
 */
import type { Demand } from './demand.js';
import type { TieMode } from './tiebreak.js';
import type { WorkloadModel } from './workload.js';
import type { AdmissionReason, ClusterSnapshot, GpuReason, NodeReason, NodeState, PlacementRequest } from './types.js';

/** Everything a plugin may read while deciding one request. */
export interface CycleContext {
  readonly snapshot: ClusterSnapshot;
  readonly request: PlacementRequest;
  readonly demand: Demand;
  /** The estimated mix of incoming requests (for fragmentation-aware scoring); null if unknown. */
  readonly workload: WorkloadModel | null;
}

/** Checks that do not depend on a node (quotas): a failure means no node can help. */
export interface AdmissionPlugin {
  readonly name: string;
  admit(ctx: CycleContext): AdmissionReason | null;
}

export interface PreparedFilter {
  /** Node-wide check (CPU, memory); null when the node passes. */
  node?(node: NodeState): NodeReason | null;
  /** Check of one GPU (by position in node.spec.gpus); null when it passes. */
  gpu?(node: NodeState, gpu: number): GpuReason | null;
}

export interface FilterPlugin {
  readonly name: string;
  prepare(ctx: CycleContext): PreparedFilter | null;
}

export interface PreparedScore {
  /**
   * How good it is to place the request on `gpus` of `node`: 0 (worst) to 1 (best). Called
   * once per candidate, so keep it free of allocation; `gpus` is valid only during the call
   * (the engine reuses the array).
   */
  score(node: NodeState, gpus: readonly number[]): number;
  /**
   * For a plugin that tells GPUs apart by identity (gpuIdentity): a number such that two GPUs
   * of a node in the same state (NodeState.gpuClass) with equal keys get the same score for a
   * single-GPU request. Lets the engine score one GPU of each (class, key) pair instead of
   * every GPU; without it, every GPU is scored.
   */
  gpuKey?(node: NodeState, gpu: number): number;
  /** Preference for one GPU, 0-1, used to pick the GPUs of a multi-GPU candidate. */
  gpu?(node: NodeState, gpu: number): number;
  /**
   * For a score that reads more than the node's state and the request on some nodes (a
   * cluster-wide quantity, as `scarcity`'s): `memoKey` names what decides which nodes those
   * are, and `volatile(node)` says whether this node is one. The engine's decision memo keys on
   * `memoKey`, and neither answers for nor keeps a volatile node. Absent: the scores depend on
   * the node's state, the request and the workload model alone.
   */
  readonly memoKey?: string;
  volatile?(node: NodeState): boolean;
  /** Extra GPU sets worth scoring for a multi-GPU request (e.g. the best-connected ones). */
  propose?(node: NodeState, feasible: readonly number[], count: number): readonly (readonly number[])[];
}

export interface ScorePlugin {
  readonly name: string;
  /**
   * True when the score can tell apart two GPUs of one node that are in the same state (links,
   * NUMA). When no plugin of a policy does, the engine scores one GPU per equivalence class.
   */
  readonly gpuIdentity: boolean;
  /**
   * How ties are broken when this plugin is in the policy: the default `hash` (one seeded draw
   * per decision, tiebreak.ts), or `first` (first GPU set, then the node name sorting first),
   * for a faithful port of a policy defined with it (fgd).
   */
  readonly tieMode?: TieMode;
  prepare(ctx: CycleContext): PreparedScore | null;
}
