/**
 * The bridge between the daemon's records and the scheduler's vocabulary: this machine as a
 * one-node snapshot, running tasks as placements, a queued task as a placement request.
 * Pure functions; the daemon calls them and commits what they decide.
 */
import { firstFit, freeSms, partitionEnd, partitionRange, sharePercent, smLayout, type Gpu, type IsolationMode, type SmGroups, type SmRange } from '../domain/index.js';
import { buildSnapshot, GPU_MILLI, type ClusterSnapshot, type GpuSpec, type NodeSpec, type Placement, type PlacementRequest, type TenantQuota } from '../scheduler/index.js';
import type { Task, TaskGpu, TaskSmRange } from '../contract/task.js';

export const LOCAL_NODE = 'local';

/** This machine as the scheduler sees it. CPU and host memory are not reserved by the daemon (yet): effectively unlimited. */
export function localNode(gpus: readonly Gpu[]): NodeSpec {
  return {
    name: LOCAL_NODE,
    cpuMilli: Number.MAX_SAFE_INTEGER,
    memoryBytes: Number.MAX_SAFE_INTEGER,
    gpus: gpus.map(toGpuSpec),
  };
}

function toGpuSpec(g: Gpu): GpuSpec {
  return {
    index: g.index,
    uuid: g.uuid,
    model: g.model,
    name: g.name,
    memoryBytes: g.memoryTotalBytes,
    computeMilli: GPU_MILLI,
    numaNode: g.numaNode,
    health: g.health,
    links: g.topology.filter((l) => l.level !== 'SELF').map((l) => ({ gpu: l.gpu, level: l.level, nvlinks: l.nvlinks })),
    // MIG-enabled GPUs need instance management the daemon does not do yet: they take no slices.
    mig: g.migMode === 'enabled' ? { instances: [], dynamic: false, creatable: [], totalSlices: 7 } : null,
  };
}

/** A running task's hold on the GPUs, found by UUID (indices can change across reboots). */
export function taskPlacement(task: Task, node: NodeSpec): Placement | null {
  if (task.gpus === null) return null;
  const shares = [];
  for (const g of task.gpus) {
    const spec = node.gpus.find((s) => s.uuid === g.uuid);
    if (!spec) continue; // the GPU is gone; nothing to reserve on it
    shares.push({ gpu: spec.index, memoryBytes: g.memoryBytes, computeMilli: g.computeMilli, mig: null });
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

export function placementRequest(task: Pick<Task, 'id' | 'request' | 'tenant'>): PlacementRequest {
  return { id: task.id, slice: task.request, cpuMilli: 0, memoryBytes: 0, tenant: task.tenant, gang: null, suspendable: false, policy: null };
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
  return Math.max(1, Math.floor(sharePercent(task.request.compute)));
}

/** What a task holding GPUs occupies, as partition placement needs it (resuming tasks: on their targets). */
export interface Holder {
  readonly id: string;
  readonly isolation: IsolationMode;
  readonly gpus: readonly TaskGpu[];
  /** In `gpus` order; null unless sm-partition. */
  readonly smRanges: readonly TaskSmRange[] | null;
}

/**
 * A task's SM ranges moved onto `gpus` (same order, same offsets): a partition keeps its
 * offset wherever it resumes, because its process's green context was made for those SMs.
 */
export function rangesOnto(ranges: readonly TaskSmRange[] | null, gpus: readonly TaskGpu[]): TaskSmRange[] | null {
  if (ranges === null) return null;
  return ranges.map((r, i) => ({ uuid: gpus[i]?.uuid ?? r.uuid, offset: r.offset, count: r.count }));
}

/** SM ranges held on each GPU (by UUID). */
export function heldSmRanges(holders: readonly Holder[]): Map<string, SmRange[]> {
  const held = new Map<string, SmRange[]>();
  for (const h of holders) {
    for (const r of h.smRanges ?? []) {
      const list = held.get(r.uuid) ?? [];
      list.push({ offset: r.offset, count: r.count });
      held.set(r.uuid, list);
    }
  }
  return held;
}

export type PartitionFit = { readonly ok: true; readonly ranges: TaskSmRange[] | null } | { readonly ok: false; readonly uuid: string; readonly why: string };

/**
 * Whether a task can go on the GPUs the scheduler chose, as far as SM partitions go, and if it
 * is an sm-partition task, where its SMs are: first fit on each GPU, or `fixed` offsets (a
 * suspended partition resuming). Partitions and time-sliced work never share a GPU: a
 * process outside the partitions' MPS server time-slices with all of them, which is the
 * slowdown partitions exist to avoid. The first GPU that cannot take it is named, so the
 * caller can ask the scheduler for a placement without it. `groups`: what the driver said of
 * each GPU's SM groups (by UUID; gpushare-smprobe), so partitions stay within the SMs it groups.
 */
export function fitPartitions(
  task: Pick<Task, 'request'>,
  gpus: readonly TaskGpu[],
  devices: readonly Gpu[],
  holders: readonly Holder[],
  fixed: readonly TaskSmRange[] | null = null,
  groups: ReadonlyMap<string, SmGroups> = new Map(),
): PartitionFit {
  const partition = task.request.isolation === 'sm-partition';
  for (const g of gpus) {
    const other = holders.find((h) => h.gpus.some((x) => x.uuid === g.uuid) && (h.isolation === 'sm-partition') !== partition);
    if (other) {
      const why = partition ? `GPU ${g.index} runs time-sliced task ${other.id}, and SM partitions do not share a GPU with time-sliced work` : `GPU ${g.index} runs SM partitions (task ${other.id}); time-sliced work would slow them`;
      return { ok: false, uuid: g.uuid, why };
    }
  }
  if (!partition) return { ok: true, ranges: null };
  const percent = computeLimitPercent(task);
  if (percent === null) return { ok: false, uuid: gpus[0]?.uuid ?? '', why: 'sm-partition without a compute share' };
  const held = heldSmRanges(holders);
  const ranges: TaskSmRange[] = [];
  for (const [i, g] of gpus.entries()) {
    const device = devices.find((d) => d.uuid === g.uuid);
    if (!device) return { ok: false, uuid: g.uuid, why: `GPU ${g.uuid} is gone` };
    const layout = smLayout(device, groups.get(g.uuid) ?? null);
    if (!layout.ok) return { ok: false, uuid: g.uuid, why: `GPU ${g.index}: ${layout.issues[0]?.message ?? 'cannot be partitioned'}` };
    const count = partitionRange(layout.value, percent);
    const taken = held.get(g.uuid) ?? [];
    const want = fixed?.[i];
    let range: SmRange | null;
    if (want !== undefined) {
      const clash = taken.some((r) => want.offset < r.offset + r.count && r.offset < want.offset + want.count);
      range = clash || want.offset + want.count > partitionEnd(layout.value, want.count) ? null : { offset: want.offset, count: want.count };
      if (range === null) return { ok: false, uuid: g.uuid, why: `GPU ${g.index}: SMs ${want.offset}-${want.offset + want.count - 1}, where its partition was, are taken` };
    } else {
      range = firstFit(layout.value, taken, count);
      if (range === null) {
        const free = freeSms(layout.value, taken);
        const why = firstFit(layout.value, [], count) === null // too big even alone
          ? `${percent}% is ${count} SMs, more than the ${layout.value.groupable} of ${layout.value.total} SMs its driver can group into partitions`
          : `no ${count} SMs in a row are free (${free} of the ${layout.value.groupable} SMs its driver can partition are free)`;
        return { ok: false, uuid: g.uuid, why: `GPU ${g.index}: ${why}` };
      }
    }
    ranges.push({ uuid: g.uuid, offset: range.offset, count: range.count });
    // A task on two GPUs never holds the same GPU twice, but keep held exact anyway.
    held.set(g.uuid, [...taken, range]);
  }
  return { ok: true, ranges };
}
