/**
 * The bridge between the daemon's records and the scheduler's vocabulary: this machine as a
 * one-node snapshot, running tasks as placements, a queued task as a placement request.
 * Pure functions; the daemon calls them and commits what they decide.
 */
import type { Gpu } from '../domain/index.js';
import { buildSnapshot, GPU_MILLI, type ClusterSnapshot, type GpuSpec, type NodeSpec, type Placement, type PlacementRequest, type TenantQuota } from '../scheduler/index.js';
import type { Task, TaskGpu } from './task.js';

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

/** The compute limit libgpushare enforces: the request's share as a percent, or none. */
export function computeLimitPercent(task: Task): number | null {
  return task.request.compute === null || task.request.isolation === 'exclusive' ? null : Math.round(task.request.compute * 1000) / 10;
}
