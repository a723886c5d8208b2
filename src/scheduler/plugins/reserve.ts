/**
 * Reserve: leave the GPUs that restricted requests depend on to them. Some requests may run
 * on a few GPU models only (an include list); when other requests take those models' GPUs
 * first, the restricted ones fail later although the cluster has room (on the Alibaba trace's
 * gpuspec10 list, most pods that fail by 100% arrived are T4- or P100-only). FGD's expected
 * fragmentation cannot see this: a whole GPU taken is not a fragment, however wanted it was.
 *
 * A GPU's pressure is, summed over the include lists that name its model, the share of GPU
 * demand restricted to that list over the share of capacity that can serve it (the workload
 * model learns the demand online, workload.ts). The score prefers GPUs under less pressure:
 * a request that may run anywhere goes where no restricted demand is waiting. It depends only
 * on the GPU's model, the workload model and the cluster's node set, so memo.ts may keep it.
 */
import type { ScorePlugin } from '../framework.js';
import { modelSelected } from '../fragmentation.js';
import type { ModelDemand, WorkloadModel } from '../workload.js';
import type { ClusterSnapshot, GpuSpec, NodeState } from '../types.js';

/** Pressures of one workload model on one node set; per-node arrays filled as nodes are scored. */
interface Pressures {
  readonly nodeSet: ClusterSnapshot['nodeByName'];
  /** Per restricted list: demand share / share of capacity that can serve it (0 when none can). */
  readonly ratios: Float64Array;
  readonly lists: readonly ModelDemand[];
  readonly byGpus: WeakMap<readonly GpuSpec[], Float64Array>;
}

/** Keyed by workload model; the node set is checked (a node set is one nodeByName map, shared by derived snapshots). */
const cache = new WeakMap<WorkloadModel, Pressures>();

function pressuresOf(snapshot: ClusterSnapshot, model: WorkloadModel, lists: readonly ModelDemand[]): Pressures {
  const hit = cache.get(model);
  if (hit && hit.nodeSet === snapshot.nodeByName) return hit;
  const serving = new Float64Array(lists.length);
  let capacity = 0;
  for (const node of snapshot.nodes) {
    for (const g of node.spec.gpus) {
      if (g.health !== 'ok' || g.mig !== null) continue;
      capacity += g.computeMilli;
      for (let k = 0; k < lists.length; k++) if (modelSelected(g, (lists[k] as ModelDemand).models)) serving[k] = (serving[k] as number) + g.computeMilli;
    }
  }
  const ratios = new Float64Array(lists.length);
  for (let k = 0; k < lists.length; k++) {
    const s = serving[k] as number;
    ratios[k] = s > 0 ? (lists[k] as ModelDemand).share / (s / capacity) : 0;
  }
  const p = { nodeSet: snapshot.nodeByName, ratios, lists, byGpus: new WeakMap<readonly GpuSpec[], Float64Array>() };
  cache.set(model, p);
  return p;
}

function gpuPressures(p: Pressures, gpus: readonly GpuSpec[]): Float64Array {
  let a = p.byGpus.get(gpus);
  if (a) return a;
  a = new Float64Array(gpus.length);
  for (let i = 0; i < gpus.length; i++) {
    let sum = 0;
    for (let k = 0; k < p.lists.length; k++) if (modelSelected(gpus[i] as GpuSpec, (p.lists[k] as ModelDemand).models)) sum += p.ratios[k] as number;
    a[i] = sum;
  }
  p.byGpus.set(gpus, a);
  return a;
}

export const reserve: ScorePlugin = {
  name: 'reserve',
  gpuIdentity: false,
  prepare(ctx) {
    const model = ctx.workload;
    const lists = model?.restricted;
    if (!model || !lists || lists.length === 0 || ctx.demand.count === 0) return null;
    const p = pressuresOf(ctx.snapshot, model, lists);
    let lastGpus: readonly GpuSpec[] | null = null;
    let last: Float64Array | null = null;
    const of = (node: NodeState): Float64Array => {
      if (node.spec.gpus !== lastGpus || last === null) {
        lastGpus = node.spec.gpus;
        last = gpuPressures(p, lastGpus);
      }
      return last;
    };
    return {
      score(node, gpus) {
        const a = of(node);
        let sum = 0;
        for (const i of gpus) sum += a[i] as number;
        const mean = gpus.length > 0 ? sum / gpus.length : 0;
        return mean >= 1 ? 0 : 1 - mean;
      },
      gpu: (node, i) => 1 - Math.min(1, of(node)[i] as number),
    };
  },
};
