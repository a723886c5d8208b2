/**
 * The bridge between the daemon's records and the scheduler's vocabulary: this machine as a
 * one-node snapshot, running tasks as placements, a queued task as a placement request.
 * Pure functions; the daemon calls them and commits what they decide.
 */
import { partitionPercent, smSupport, type Gpu, type SmGroups } from '../domain/index.js';
import { buildSnapshot, GPU_MILLI, type ClusterSnapshot, type GpuHold, type GpuShare, type GpuSpec, type NodeSpec, type Placement, type PlacementRequest, type TenantQuota } from '../scheduler/index.js';
import type { Task, TaskGpu, TaskSmRange } from '../contract/task.js';

export const LOCAL_NODE = 'local';

/**
 * This machine as the scheduler sees it. CPU and host memory are not reserved by the daemon
 * (yet): effectively unlimited. `holdOf`: why a GPU takes no new work (gpu-health.ts: cordoned,
 * faulted), which the scheduler reads as its health; a lost GPU stays lost.
 */
export function localNode(gpus: readonly Gpu[], groups: ReadonlyMap<string, SmGroups> = new Map(), holdOf: (uuid: string) => GpuHold | null = () => null, ratioOf: (index: number) => number = () => 1): NodeSpec {
  return {
    name: LOCAL_NODE,
    cpuMilli: Number.MAX_SAFE_INTEGER,
    memoryBytes: Number.MAX_SAFE_INTEGER,
    gpus: gpus.map((g) => toGpuSpec(g, groups.get(g.uuid) ?? null, g.health === 'ok' ? holdOf(g.uuid) : null, ratioOf(g.index))),
  };
}

/** `groups`: what the driver said of the GPU's SM groups (gpushare-smprobe), so partitions stay within the SMs it groups. */
/** `ratio`: memory overcommit (overcommit-config.ts): the scheduler may promise ratio x the card's memory. */
function toGpuSpec(g: Gpu, groups: SmGroups | null, hold: GpuHold | null, ratio: number): GpuSpec {
  return {
    index: g.index,
    uuid: g.uuid,
    model: g.model,
    name: g.name,
    memoryBytes: Math.floor(g.memoryTotalBytes * ratio),
    computeMilli: GPU_MILLI,
    numaNode: g.numaNode,
    health: hold ?? g.health,
    links: g.topology.filter((l) => l.level !== 'SELF').map((l) => ({ gpu: l.gpu, level: l.level, nvlinks: l.nvlinks })),
    // MIG-enabled GPUs need instance management the daemon does not do yet: they take no slices.
    mig: g.migMode === 'enabled' ? { instances: [], dynamic: false, creatable: [], totalSlices: 7 } : null,
    sm: smSupport(g, groups),
  };
}

/**
 * A running task's hold on the GPUs, found by UUID (indices can change across reboots); an
 * sm-partition task's SM ranges go with them (by position: a resuming task's are moved onto its
 * targets with rangesOnto), so the scheduler sees which SMs are taken.
 */
export function taskPlacement(task: Task, node: NodeSpec): Placement | null {
  if (task.gpus === null) return null;
  const shares: GpuShare[] = [];
  for (const [k, g] of task.gpus.entries()) {
    const spec = node.gpus.find((s) => s.uuid === g.uuid);
    if (!spec) continue; // the GPU is gone; nothing to reserve on it
    const share: GpuShare = { gpu: spec.index, memoryBytes: g.memoryBytes, computeMilli: g.computeMilli, mig: null };
    const range = task.smRanges?.[k];
    shares.push(range === undefined ? share : { ...share, smRange: { offset: range.offset, count: range.count } });
  }
  return {
    id: task.id,
    node: node.name,
    gpus: shares,
    cpuMilli: 0,
    memoryBytes: 0,
    priority: task.priority,
    tenant: task.tenant,
    exclusive: task.request.isolation === 'exclusive',
    suspendable: false,
    gang: null,
  };
}

/** The snapshot the next decision is made on: the machine with every running task on it. */
export function currentSnapshot(node: NodeSpec, running: readonly Task[], quotas: ReadonlyMap<string, TenantQuota> = new Map()): ClusterSnapshot {
  const placements = running.map((t) => taskPlacement(t, node)).filter((p): p is Placement => p !== null);
  return buildSnapshot([node], placements, quotas);
}

/** `fixed`: the SM ranges a suspended partition resumes on (its own offsets, wherever it goes). */
export function placementRequest(task: Pick<Task, 'id' | 'request' | 'tenant'>, fixed: readonly TaskSmRange[] | null = null): PlacementRequest {
  const smRanges = fixed === null ? null : fixed.map((r) => ({ offset: r.offset, count: r.count }));
  return { id: task.id, slice: task.request, cpuMilli: 0, memoryBytes: 0, tenant: task.tenant, gang: null, suspendable: false, policy: null, smRanges };
}

/** The SM ranges a placement gives an sm-partition task, per GPU in its order; null for any other task. */
export function taskSmRanges(placement: Placement, node: NodeSpec): TaskSmRange[] | null {
  const ranges: TaskSmRange[] = [];
  for (const s of placement.gpus) {
    if (s.smRange == null) return null;
    ranges.push({ uuid: node.gpus[s.gpu]?.uuid ?? '', offset: s.smRange.offset, count: s.smRange.count });
  }
  return ranges.length > 0 ? ranges : null;
}

/** What a placement gives the task, per GPU, in the order CUDA will number them. */
export function taskGpus(placement: Placement, node: NodeSpec): TaskGpu[] {
  return placement.gpus.map((s) => {
    const spec = node.gpus[s.gpu];
    if (!spec) throw new Error(`placement names GPU ${s.gpu}, which ${node.name} does not have`);
    return { index: spec.index, uuid: spec.uuid, memoryBytes: s.memoryBytes, computeMilli: s.computeMilli };
  });
}

/**
 * The compute limit libgpushare enforces, in the whole percent it reads (a fraction such as
 * `33.3` would be refused there, leaving the task unlimited): the request's share rounded down,
 * so the process never gets more than the scheduler reserved, and at least 1%; or none.
 */
export function computeLimitPercent(task: Pick<Task, 'request'>): number | null {
  if (task.request.compute === null || task.request.isolation === 'exclusive') return null;
  return partitionPercent(task.request.compute);
}

/**
 * A task's SM ranges moved onto `gpus` (same order, same offsets): a partition keeps its
 * offset wherever it resumes, because its process's green context was made for those SMs.
 */
export function rangesOnto(ranges: readonly TaskSmRange[] | null, gpus: readonly TaskGpu[]): TaskSmRange[] | null {
  if (ranges === null) return null;
  return ranges.map((r, i) => ({ uuid: gpus[i]?.uuid ?? r.uuid, offset: r.offset, count: r.count }));
}
