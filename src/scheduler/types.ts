/**
 * The scheduler's vocabulary: what a cluster looks like to it (a snapshot), what it is asked
 * to place (a request) and what it answers (a decision). Everything here is immutable data.
 *
 * Units are integers where the domain allows: compute in milli-GPU (1000 = a whole GPU's
 * compute), CPU in milli-cores, memory in bytes.
 */
import type { GpuHealth, SliceRequest, SmRange, SmSupport, TopologyLevel } from '../domain/index.js';

/** Compute of one whole GPU, in milli. */
export const GPU_MILLI = 1000;

/** A link from one GPU to another on the same node (nvidia-smi topo's levels, best first). */
export interface GpuLinkInfo {
  readonly gpu: number;
  readonly level: TopologyLevel;
  readonly nvlinks: number;
}

/** A MIG instance that exists on a GPU. */
export interface MigInstance {
  readonly id: string;
  /** `1g.10gb`, `3g.40gb`... */
  readonly profile: string;
  readonly memoryBytes: number;
  /** Compute slices (the `Ng` part of the profile): 1-7. */
  readonly slices: number;
}

/**
 * How a MIG-enabled GPU is carved. `instances` exist now; with `dynamic`, the engine may also
 * ask for a new instance of any profile in `creatable` while the GPU has room for it.
 */
export interface MigLayout {
  readonly instances: readonly MigInstance[];
  readonly dynamic: boolean;
  readonly creatable: readonly string[];
  /** Compute slices the GPU has in all (7 on A100/H100). */
  readonly totalSlices: number;
}

/** Why a GPU the driver reaches takes no new work; running work stays. */
export type GpuHold =
  | { readonly kind: 'cordoned'; readonly by: string; readonly note: string | null }
  | { readonly kind: 'fault'; readonly fault: 'xid' | 'ecc'; readonly code: number | null };

/** A GPU as the scheduler sees it: capacity and identity, no usage. */
export interface GpuSpec {
  /** Node-local index. */
  readonly index: number;
  readonly uuid: string;
  /** Short model used by selectors (`H100-80GB`, or the trace's `V100M16`). */
  readonly model: string;
  /** Board name, also matched by model selectors. */
  readonly name: string;
  readonly memoryBytes: number;
  /** Compute capacity in milli; 1000 for a whole GPU. */
  readonly computeMilli: number;
  readonly numaNode: number | null;
  /**
   * `ok`; `lost` (off the bus); or held: the driver reaches it but it takes no new work, an
   * admin's cordon or a fault seen on it (node/gpu-health.ts). Anything but `ok` takes nothing.
   */
  readonly health: GpuHealth | GpuHold;
  readonly links: readonly GpuLinkInfo[];
  /** null when MIG is off: the GPU is shared by slices instead. */
  readonly mig: MigLayout | null;
  /**
   * How the GPU splits into SM partitions (isolation `sm-partition`): its layout from the
   * driver's SM groups or the default, or why it cannot be partitioned (domain/smpartition.ts).
   */
  readonly sm: SmSupport;
}

/** A node: its CPU, memory and GPUs. */
export interface NodeSpec {
  readonly name: string;
  readonly cpuMilli: number;
  readonly memoryBytes: number;
  readonly gpus: readonly GpuSpec[];
}

/** What a placed slice holds on one GPU. */
export interface GpuShare {
  readonly gpu: number;
  readonly memoryBytes: number;
  readonly computeMilli: number;
  /** The MIG instance it runs in (an existing id, or a new one the node must create). */
  readonly mig: { readonly instanceId: string | null; readonly profile: string } | null;
  /**
   * The SMs an sm-partition slice runs on (first fit when placed, or the fixed range of a
   * partition resuming); absent or null for every other kind of slice. A share with a range
   * is a partition: the GPU then takes no time-sliced work, and its SMs no other partition.
   */
  readonly smRange?: SmRange | null;
}

/** A slice that holds resources on a node (a task, a pod, or a decision not yet committed). */
export interface Placement {
  readonly id: string;
  readonly node: string;
  readonly gpus: readonly GpuShare[];
  readonly cpuMilli: number;
  readonly memoryBytes: number;
  readonly priority: number;
  readonly tenant: string | null;
  /** Holds its GPUs alone: nothing else may share them. */
  readonly exclusive: boolean;
  /** Can be suspended (checkpointed to host memory) instead of killed to make room. */
  readonly suspendable: boolean;
  readonly gang: string | null;
}

/** Per-tenant limits; a missing field means no limit on it. */
export interface TenantQuota {
  /** GPU slices held (each GPU a placement touches counts once). */
  readonly gpus?: number;
  readonly memoryBytes?: number;
  readonly computeMilli?: number;
}

export interface TenantUsage {
  readonly gpus: number;
  readonly memoryBytes: number;
  readonly computeMilli: number;
}

/**
 * A node with what is in use on it. Immutable: a change makes a new NodeState, so caches may
 * key on object identity (see the fragmentation plugin).
 */
export interface NodeState {
  readonly spec: NodeSpec;
  /** Position in the snapshot's node list. */
  readonly ordinal: number;
  readonly cpuFree: number;
  readonly memoryFree: number;
  /** Per GPU (by position in spec.gpus): free compute in milli. */
  readonly gpuComputeFree: readonly number[];
  readonly gpuMemoryFree: readonly number[];
  /** Per GPU: how many slices hold part of it. */
  readonly gpuSlices: readonly number[];
  /** Per GPU: held by an exclusive slice. */
  readonly gpuExclusive: readonly boolean[];
  /** Per GPU: the SM ranges partitions hold on it (empty for most GPUs). */
  readonly gpuSmRanges: readonly (readonly SmRange[])[];
  /** Per GPU: how many of its slices are SM partitions (the rest, gpuSlices minus these, are time-sliced or exclusive). */
  readonly gpuPartitions: readonly number[];
  /** Per GPU: MIG instance ids in use, and compute slices taken (for dynamic MIG). */
  readonly gpuMigUsed: readonly (readonly string[])[];
  readonly gpuMigSlicesUsed: readonly number[];
  readonly placements: readonly Placement[];
  /** Sum of free compute over healthy GPUs, and how many GPUs are entirely free. */
  readonly computeFreeTotal: number;
  readonly wholeGpusFree: number;
  /**
   * Summaries the engine reads to drop a node before any per-GPU work (each is a necessary
   * condition, never a sufficient one): the most free compute and memory on one healthy GPU,
   * and how many healthy non-MIG GPUs, not held exclusively, have all their capacity free.
   */
  readonly maxGpuComputeFree: number;
  readonly maxGpuMemoryFree: number;
  readonly fullGpusFree: number;
  /** Compute capacity of the healthy GPUs. */
  readonly computeCapacity: number;
  /** Every GPU has the same compute and memory capacity, so a request needs the same on each. */
  readonly uniformGpus: boolean;
  /**
   * Per GPU: the lowest index of a GPU in the same state (capacity, free compute and memory,
   * slice count, model). Scores that ignore GPU identity cannot tell such GPUs apart, so the
   * engine scores one per class.
   */
  readonly gpuClass: readonly number[];
  /**
   * The same per-GPU state packed for the engine's hot loop (one contiguous read per node):
   * `gpuFree` is [compute0, memory0, compute1, memory1, ...]; in `gpuOpenMask` bit i is set when
   * GPU i is healthy, without MIG and not held exclusively, in `gpuIdleMask` when it holds no
   * slice, in `gpuPartitionMask` when SM partitions hold it (it then takes no other kind of
   * slice). The masks are 0 on nodes of over 31 GPUs, which take the slower path.
   */
  readonly gpuFree: Float64Array;
  readonly gpuOpenMask: number;
  readonly gpuIdleMask: number;
  readonly gpuPartitionMask: number;
}

/** The cluster at one instant: the engine's only input besides the request. */
export interface ClusterSnapshot {
  readonly nodes: readonly NodeState[];
  readonly nodeByName: ReadonlyMap<string, number>;
  readonly quotas: ReadonlyMap<string, TenantQuota>;
  readonly usage: ReadonlyMap<string, TenantUsage>;
  /** Largest node capacities: the scale scores normalise by. */
  readonly scale: { readonly cpuMilli: number; readonly memoryBytes: number; readonly computeMilli: number };
  /** Whether any GPU has link or NUMA data (topology scoring has nothing to say otherwise). */
  readonly hasTopology: boolean;
}

/** A request to place: the domain's slice request plus what the scheduler also needs. */
export interface PlacementRequest {
  readonly id: string;
  readonly slice: SliceRequest;
  readonly cpuMilli: number;
  readonly memoryBytes: number;
  readonly tenant: string | null;
  /** Gang id: requests sharing one are placed all-or-nothing (see gang.ts). */
  readonly gang: string | null;
  readonly suspendable: boolean;
  /** A policy for this request alone, overriding the tenant's and the cluster's. */
  readonly policy: string | null;
  /**
   * For an sm-partition request: the SM range it must have on each of its GPUs, in order (a
   * suspended partition resumes on the SMs its green context was made for); absent or null: first fit.
   */
  readonly smRanges?: readonly SmRange[] | null;
}

/** Why one GPU cannot take the request. */
export type GpuReason =
  | { readonly kind: 'gpuUnhealthy'; readonly gpu: number }
  /** Held (GpuHold): an admin's cordon, or an XID or uncorrectable ECC fault not yet recovered. */
  | { readonly kind: 'gpuCordoned'; readonly gpu: number; readonly by: string; readonly note: string | null }
  | { readonly kind: 'gpuFault'; readonly gpu: number; readonly fault: 'xid' | 'ecc'; readonly code: number | null }
  | { readonly kind: 'modelNotSelected'; readonly gpu: number; readonly model: string }
  | { readonly kind: 'uuidNotSelected'; readonly gpu: number; readonly uuid: string }
  | { readonly kind: 'numaMismatch'; readonly gpu: number; readonly numaNode: number | null; readonly requested: number }
  | { readonly kind: 'insufficientGpuMemory'; readonly gpu: number; readonly requestedBytes: number; readonly freeBytes: number }
  | { readonly kind: 'insufficientCompute'; readonly gpu: number; readonly requestedMilli: number; readonly freeMilli: number }
  | { readonly kind: 'heldExclusively'; readonly gpu: number }
  | { readonly kind: 'notIdleForExclusive'; readonly gpu: number; readonly slices: number }
  | { readonly kind: 'migMismatch'; readonly gpu: number; readonly migEnabled: boolean }
  | { readonly kind: 'noMigProfileFits'; readonly gpu: number; readonly profile: string | null; readonly requestedBytes: number | null }
  | { readonly kind: 'quotaMemory'; readonly gpu: number; readonly requestedBytes: number; readonly remainingBytes: number }
  // SM partitions (isolation sm-partition; see plugins/partition.ts).
  | { readonly kind: 'notPartitionable'; readonly gpu: number; readonly name: string; readonly cause: 'computeCapability'; readonly computeCapability: string | null }
  | { readonly kind: 'notPartitionable'; readonly gpu: number; readonly name: string; readonly cause: 'smCountUnknown' }
  /** The partition is bigger than the SMs the driver groups, even on an idle GPU; `largestPercent` would fit. */
  | { readonly kind: 'partitionTooLarge'; readonly gpu: number; readonly percent: number; readonly wantSms: number; readonly groupableSms: number; readonly totalSms: number; readonly largestPercent: number }
  | { readonly kind: 'noFreeSmRun'; readonly gpu: number; readonly wantSms: number; readonly largestFreeRun: number; readonly freeSms: number; readonly groupableSms: number }
  /** A resuming partition's own SMs (`offset`, `count`) are taken or lie outside the GPU's groups. */
  | { readonly kind: 'smRangeTaken'; readonly gpu: number; readonly offset: number; readonly count: number }
  /** Partitions and time-sliced work never share a GPU: `holding` is what the GPU runs now. */
  | { readonly kind: 'isolationMix'; readonly gpu: number; readonly holding: 'sm-partition' | 'time-slice' };

/** Why one node cannot take the request. */
export type NodeReason =
  | { readonly kind: 'insufficientCpu'; readonly requestedMilli: number; readonly freeMilli: number }
  | { readonly kind: 'insufficientMemory'; readonly requestedBytes: number; readonly freeBytes: number }
  | { readonly kind: 'tooFewGpus'; readonly requested: number; readonly eligible: number; readonly gpus: readonly GpuReason[] };

export interface NodeRejection {
  readonly node: string;
  readonly reason: NodeReason;
}

/** Why a request can never be placed as things stand, whatever node: checked before any node. */
export type AdmissionReason =
  | { readonly kind: 'quotaExceeded'; readonly tenant: string; readonly resource: 'gpus' | 'memoryBytes' | 'computeMilli'; readonly requested: number; readonly used: number; readonly limit: number }
  | { readonly kind: 'unknownPolicy'; readonly policy: string }
  | { readonly kind: 'noNodes' };

export type Decision =
  | { readonly status: 'ok'; readonly placement: Placement; readonly score: number }
  | { readonly status: 'unschedulable'; readonly rejections: readonly NodeRejection[] }
  | { readonly status: 'unresolvable'; readonly reason: AdmissionReason };
