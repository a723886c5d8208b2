/**
 * Building cluster snapshots and deriving new ones. A snapshot is never mutated: committing a
 * placement returns a new snapshot that shares every node it did not touch, so a decision costs
 * one node rebuild plus a copy of the node list (pointers), whatever the cluster size.
 */
import { migSlicesOf } from './mig.js';
import type { SmRange } from '../domain/index.js';
import type { ClusterSnapshot, GpuSpec, NodeSpec, NodeState, Placement, TenantQuota, TenantUsage } from './types.js';

const NO_RANGES: readonly SmRange[] = [];
/**
 * Per GPU count, the per-GPU fields of a node without partitions (most nodes): shared and
 * never written, so a node rebuild allocates nothing for partitions it does not have.
 */
const noPartitions: { counts: readonly number[]; ranges: readonly (readonly SmRange[])[] }[] = [];
function noPartitionsOf(n: number): { counts: readonly number[]; ranges: readonly (readonly SmRange[])[] } {
  let x = noPartitions[n];
  if (x === undefined) {
    x = { counts: Object.freeze(new Array<number>(n).fill(0)), ranges: Object.freeze(new Array<readonly SmRange[]>(n).fill(NO_RANGES)) };
    noPartitions[n] = x;
  }
  return x;
}

const NO_USAGE: TenantUsage = { gpus: 0, memoryBytes: 0, computeMilli: 0 };

/** A snapshot of `nodes` with `placements` already on them (placements on unknown nodes throw). */
export function buildSnapshot(
  nodes: readonly NodeSpec[],
  placements: readonly Placement[] = [],
  quotas: ReadonlyMap<string, TenantQuota> = new Map(),
): ClusterSnapshot {
  const byNode = new Map<string, Placement[]>();
  for (const p of placements) {
    const list = byNode.get(p.node);
    if (list) list.push(p);
    else byNode.set(p.node, [p]);
  }
  const nodeByName = new Map<string, number>();
  const states = nodes.map((spec, i) => {
    if (nodeByName.has(spec.name)) throw new Error(`duplicate node name ${spec.name}`);
    nodeByName.set(spec.name, i);
    return nodeState(spec, i, byNode.get(spec.name) ?? []);
  });
  for (const name of byNode.keys()) {
    if (!nodeByName.has(name)) throw new Error(`placement on unknown node ${name}`);
  }
  const usage = new Map<string, TenantUsage>();
  for (const p of placements) addUsage(usage, p, 1);
  let cpu = 1;
  let mem = 1;
  let compute = 1;
  for (const n of nodes) {
    cpu = Math.max(cpu, n.cpuMilli);
    mem = Math.max(mem, n.memoryBytes);
    compute = Math.max(compute, n.gpus.reduce((s, g) => s + g.computeMilli, 0));
  }
  const hasTopology = nodes.some((n) => n.gpus.some((g) => g.links.length > 0 || g.numaNode !== null));
  return { nodes: states, nodeByName, quotas, usage, scale: { cpuMilli: cpu, memoryBytes: mem, computeMilli: compute }, hasTopology };
}

/** The node's state with `placements` on it (derived fields recomputed). */
export function nodeState(spec: NodeSpec, ordinal: number, placements: readonly Placement[]): NodeState {
  const n = spec.gpus.length;
  const computeFree = spec.gpus.map((g) => g.computeMilli);
  const memoryFree = spec.gpus.map((g) => g.memoryBytes);
  const slices = new Array<number>(n).fill(0);
  const exclusive = new Array<boolean>(n).fill(false);
  const migUsed: string[][] = spec.gpus.map(() => []);
  const migSlices = new Array<number>(n).fill(0);
  // Allocated at the first partition seen (see noPartitionsOf).
  let partitions: number[] | null = null;
  let smRanges: (readonly SmRange[])[] | null = null;
  let cpuFree = spec.cpuMilli;
  let memFree = spec.memoryBytes;
  for (const p of placements) {
    cpuFree -= p.cpuMilli;
    memFree -= p.memoryBytes;
    for (const share of p.gpus) {
      const i = share.gpu;
      if (i < 0 || i >= n) throw new Error(`placement ${p.id} names GPU ${i} on ${spec.name}, which has ${n}`);
      computeFree[i] = (computeFree[i] ?? 0) - share.computeMilli;
      memoryFree[i] = (memoryFree[i] ?? 0) - share.memoryBytes;
      slices[i] = (slices[i] ?? 0) + 1;
      if (p.exclusive) exclusive[i] = true;
      const range = share.smRange;
      if (range != null) {
        partitions ??= new Array<number>(n).fill(0);
        smRanges ??= new Array<readonly SmRange[]>(n).fill(NO_RANGES);
        partitions[i] = (partitions[i] ?? 0) + 1;
        smRanges[i] = [...(smRanges[i] ?? NO_RANGES), range];
      }
      if (share.mig) {
        const gpu = spec.gpus[i];
        const id = share.mig.instanceId ?? `new:${p.id}`;
        migUsed[i]?.push(id);
        const known = gpu?.mig?.instances.find((x) => x.id === id)?.slices;
        migSlices[i] = (migSlices[i] ?? 0) + (known ?? migSlicesOf(share.mig.profile));
      }
    }
  }
  let computeFreeTotal = 0;
  let wholeGpusFree = 0;
  let maxGpuComputeFree = 0;
  let maxGpuMemoryFree = 0;
  let fullGpusFree = 0;
  let computeCapacity = 0;
  let uniformGpus = true;
  const g0 = spec.gpus[0];
  const gpuClass = new Array<number>(n);
  const gpuFree = new Float64Array(2 * n);
  let gpuOpenMask = 0;
  let gpuIdleMask = 0;
  let gpuPartitionMask = 0;
  for (let i = 0; i < n; i++) {
    const g = spec.gpus[i] as GpuSpec;
    gpuFree[2 * i] = computeFree[i] ?? 0;
    gpuFree[2 * i + 1] = memoryFree[i] ?? 0;
    if (n <= 31) {
      if (g.health === 'ok' && g.mig === null && !exclusive[i]) gpuOpenMask |= 1 << i;
      if ((slices[i] ?? 0) === 0) gpuIdleMask |= 1 << i;
      if (partitions !== null && (partitions[i] ?? 0) > 0) gpuPartitionMask |= 1 << i;
    }
    if (g0 && (g.computeMilli !== g0.computeMilli || g.memoryBytes !== g0.memoryBytes)) uniformGpus = false;
    let cls = i;
    for (let j = 0; j < i && cls === i; j++) if (sameGpuState(spec, computeFree, memoryFree, slices, i, j)) cls = j;
    gpuClass[i] = cls;
    if (g.health !== 'ok') continue;
    const c = computeFree[i] ?? 0;
    const m = memoryFree[i] ?? 0;
    computeFreeTotal += c;
    computeCapacity += g.computeMilli;
    if ((slices[i] ?? 0) === 0) wholeGpusFree += 1;
    if (g.mig === null && !exclusive[i] && c >= g.computeMilli && m >= g.memoryBytes) fullGpusFree += 1;
    if (c > maxGpuComputeFree) maxGpuComputeFree = c;
    if (m > maxGpuMemoryFree) maxGpuMemoryFree = m;
  }
  return {
    spec,
    ordinal,
    cpuFree,
    memoryFree: memFree,
    gpuComputeFree: computeFree,
    gpuMemoryFree: memoryFree,
    gpuSlices: slices,
    gpuExclusive: exclusive,
    gpuSmRanges: smRanges ?? noPartitionsOf(n).ranges,
    gpuPartitions: partitions ?? noPartitionsOf(n).counts,
    gpuMigUsed: migUsed,
    gpuMigSlicesUsed: migSlices,
    placements,
    computeFreeTotal,
    wholeGpusFree,
    maxGpuComputeFree,
    maxGpuMemoryFree,
    fullGpusFree,
    computeCapacity,
    uniformGpus,
    gpuClass,
    gpuFree,
    gpuOpenMask,
    gpuIdleMask,
    gpuPartitionMask,
  };
}

/** GPUs `a` and `b` of a node in the same state, as far as identity-blind scores can see. */
function sameGpuState(spec: NodeSpec, computeFree: readonly number[], memoryFree: readonly number[], slices: readonly number[], a: number, b: number): boolean {
  const ga = spec.gpus[a] as GpuSpec;
  const gb = spec.gpus[b] as GpuSpec;
  return (
    computeFree[a] === computeFree[b] &&
    memoryFree[a] === memoryFree[b] &&
    slices[a] === slices[b] &&
    ga.computeMilli === gb.computeMilli &&
    ga.memoryBytes === gb.memoryBytes &&
    ga.model === gb.model
  );
}

/** The snapshot with `placement` committed. */
export function withPlacement(snapshot: ClusterSnapshot, placement: Placement): ClusterSnapshot {
  const i = snapshot.nodeByName.get(placement.node);
  const node = i === undefined ? undefined : snapshot.nodes[i];
  if (i === undefined || !node) throw new Error(`placement on unknown node ${placement.node}`);
  const nodes = snapshot.nodes.slice();
  nodes[i] = nodeState(node.spec, i, [...node.placements, placement]);
  const usage = new Map(snapshot.usage);
  addUsage(usage, placement, 1);
  return { ...snapshot, nodes, usage };
}

/** The snapshot without the placements whose ids are in `ids` (for preemption what-ifs). */
export function withoutPlacements(snapshot: ClusterSnapshot, ids: ReadonlySet<string>): ClusterSnapshot {
  const nodes = snapshot.nodes.slice();
  const usage = new Map(snapshot.usage);
  for (const node of snapshot.nodes) {
    const kept = node.placements.filter((p) => !ids.has(p.id));
    if (kept.length === node.placements.length) continue;
    for (const p of node.placements) if (ids.has(p.id)) addUsage(usage, p, -1);
    nodes[node.ordinal] = nodeState(node.spec, node.ordinal, kept);
  }
  return { ...snapshot, nodes, usage };
}

function addUsage(usage: Map<string, TenantUsage>, p: Placement, sign: 1 | -1): void {
  if (p.tenant === null) return;
  const u = usage.get(p.tenant) ?? NO_USAGE;
  let mem = 0;
  let compute = 0;
  for (const s of p.gpus) {
    mem += s.memoryBytes;
    compute += s.computeMilli;
  }
  usage.set(p.tenant, {
    gpus: u.gpus + sign * p.gpus.length,
    memoryBytes: u.memoryBytes + sign * mem,
    computeMilli: u.computeMilli + sign * compute,
  });
}
