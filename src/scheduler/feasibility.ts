/**
 * The default filter chain (engine.ts's DEFAULT_FILTERS) fused into one pass per node, for the
 * engine's hot path: the request's needs are worked out once per decision, a node is dropped
 * by its summaries (NodeState's max/full-GPU fields) before any per-GPU work, and a GPU is
 * checked with plain comparisons: no closure per filter, no reason object per failing GPU.
 *
 * It answers only "which GPUs pass". Why a node fails still comes from the filter plugins,
 * which the engine runs only when nothing fits, so the two must agree exactly:
 * engine.fastpath.test.ts checks them against each other on random clusters and requests.
 */
import type { CycleContext } from './framework.js';
import { partitionAsk, partitionReason, type PartitionAsk } from './plugins/partition.js';
import type { GpuSpec, NodeState } from './types.js';

export interface Feasibility {
  /** False when the node certainly cannot take the request (CPU, memory, or its GPU summaries). */
  node(node: NodeState): boolean;
  /** Writes the node-local indexes of the GPUs that pass every filter into `out`; returns how many. */
  gpus(node: NodeState, out: number[]): number;
  /**
   * The host memory check alone (node() includes it). The only check that reads the request's
   * host memory, which no built-in score reads: memo.ts keys answers without it and runs this.
   */
  memoryOk(node: NodeState): boolean;
  /** Tenant GPU memory quota left (Infinity: none); part of what a node's answer depends on. */
  readonly quotaLeft: number;
  /** An sm-partition request's ask (its fixed ranges are part of what a node's answer depends on); null otherwise. */
  readonly partition: PartitionAsk | null;
}

/** The fused checks for `ctx.request`, or null where the engine must use the plugins (MIG requests). */
export function prepareFeasibility(ctx: CycleContext): Feasibility | null {
  const { request, demand, snapshot } = ctx;
  if (demand.mig) return null;
  const s = request.slice;
  const count = demand.count;
  const cpu = request.cpuMilli;
  const mem = request.memoryBytes;
  // nodeResources prepares nothing when the request asks for neither (an overcommitted node
  // with negative free CPU still takes it).
  const checkHost = cpu > 0 || mem > 0;
  const whole = count > 0 && (demand.exclusive || (s.memory === null && s.compute === null));
  const alone = demand.exclusive;
  // smPartition: a partition request asks each GPU (the plugin's own check); any other keeps
  // off GPUs that hold partitions (gpuPartitionMask / gpuPartitions).
  const partition = partitionAsk(ctx);

  const hasModels = s.models.include.length > 0 || s.models.exclude.length > 0;
  const hasUuids = s.uuids.include.length > 0 || s.uuids.exclude.length > 0;
  const numa = s.numaNode;
  const include = s.models.include.map((x) => x.toLowerCase());
  const exclude = s.models.exclude.map((x) => x.toLowerCase());
  const includeUuids = new Set(s.uuids.include.map((u) => u.toLowerCase()));
  const excludeUuids = new Set(s.uuids.exclude.map((u) => u.toLowerCase()));
  // Models repeat across a node's GPUs: keep the last answer, and every answer by (model, name).
  const modelOk = new Map<string, boolean>();
  let lastModel = '';
  let lastName = '';
  let lastOk = false;
  const modelHit = (g: GpuSpec): boolean => {
    if (g.model === lastModel && g.name === lastName) return lastOk;
    const key = `${g.model}\u0000${g.name}`;
    let ok = modelOk.get(key);
    if (ok === undefined) {
      const m = g.model.toLowerCase();
      const n = g.name.toLowerCase();
      const hit = (x: string): boolean => m.includes(x) || n.includes(x);
      ok = (include.length === 0 || include.some(hit)) && !exclude.some(hit);
      modelOk.set(key, ok);
    }
    lastModel = g.model;
    lastName = g.name;
    lastOk = ok;
    return ok;
  };

  // quotaMemory: each of the request's GPUs takes its bytes from what the tenant has left.
  let quotaLeft = Infinity;
  if (request.tenant !== null && count > 0) {
    const q = snapshot.quotas.get(request.tenant);
    if (q?.memoryBytes !== undefined) quotaLeft = q.memoryBytes - (snapshot.usage.get(request.tenant)?.memoryBytes ?? 0);
  }

  return {
    quotaLeft,
    partition,
    memoryOk: (node) => !checkHost || node.memoryFree >= mem,
    node(node) {
      if (checkHost && (node.cpuFree < cpu || node.memoryFree < mem)) return false;
      if (count === 0) return true;
      const gpus = node.spec.gpus;
      if (gpus.length < count) return false;
      if (whole) return node.fullGpusFree >= count;
      if (node.uniformGpus) {
        const g0 = gpus[0] as GpuSpec;
        if (node.maxGpuComputeFree < demand.computeOn(g0) || node.maxGpuMemoryFree < demand.memoryOn(g0)) return false;
      }
      return true;
    },
    gpus(node, out) {
      const gpus = node.spec.gpus;
      const computeFree = node.gpuComputeFree;
      const memoryFree = node.gpuMemoryFree;
      let k = 0;
      if (node.uniformGpus && gpus.length <= 31 && !hasModels && !hasUuids && numa === null && partition === null) {
        // The common case: the same needs on every GPU, and the packed state (snapshot.ts).
        const g0 = gpus[0] as GpuSpec;
        const needMem = demand.memoryOn(g0);
        const needCompute = demand.computeOn(g0);
        if (needMem * count > quotaLeft) return 0;
        const free = node.gpuFree;
        let open = alone ? node.gpuOpenMask & node.gpuIdleMask : node.gpuOpenMask & ~node.gpuPartitionMask;
        for (let i = 0; open !== 0; i++, open >>>= 1) {
          if ((open & 1) !== 0 && (free[2 * i] as number) >= needCompute && (free[2 * i + 1] as number) >= needMem) out[k++] = i;
        }
        return k;
      }
      for (let i = 0; i < gpus.length; i++) {
        const g = gpus[i] as GpuSpec;
        if (g.health !== 'ok' || g.mig != null) continue;
        if (hasModels && !modelHit(g)) continue;
        if (hasUuids) {
          const u = g.uuid.toLowerCase();
          if ((includeUuids.size > 0 && !includeUuids.has(u)) || excludeUuids.has(u)) continue;
        }
        if (numa !== null && g.numaNode !== numa) continue;
        if (node.gpuExclusive[i] === true || (alone && (node.gpuSlices[i] ?? 0) > 0)) continue;
        const needMem = demand.memoryOn(g);
        if ((memoryFree[i] ?? 0) < needMem || (computeFree[i] ?? 0) < demand.computeOn(g)) continue;
        if (needMem * count > quotaLeft) continue;
        if (partition === null ? (node.gpuPartitions[i] ?? 0) > 0 : partitionReason(node, i, partition) !== null) continue;
        out[k++] = i;
      }
      return k;
    },
  };
}
