/**
 * Headroom: a request without GPUs goes where CPU is left over beyond what the node's idle
 * GPUs will need, so that GPU nodes keep the CPU their GPUs' future requests ask for. FGD's
 * fragmentation change sees CPU only when a node falls below a typical shape's CPU, so it
 * leaves CPU-only requests to best-fit, which packs them onto the nodes with the least CPU
 * left: on the Alibaba trace's gpushare40 list they took 5,900 cores of the 8-GPU nodes while
 * the 2-GPU ones had 19,800 to spare, and idle GPUs of CPU-starved nodes were a fifth of the
 * capacity lost at 100% arrived.
 *
 * The CPU an idle GPU will need is the workload model's mean CPU per GPU over its GPU shapes
 * (learned online, workload.ts). The score is the node's surplus after placing, CPU free minus
 * idle GPUs times that mean, over the largest node's CPU; 0 for requests with GPUs.
 */
import type { ScorePlugin } from '../framework.js';
import type { Shape, WorkloadModel } from '../workload.js';

/** Mean CPU (milli) per GPU of the model's GPU shapes, weighted by frequency; null when it has none. */
const perGpu = new WeakMap<WorkloadModel, number | null>();

function cpuPerGpu(model: WorkloadModel): number | null {
  const hit = perGpu.get(model);
  if (hit !== undefined) return hit;
  let cpu = 0;
  let gpus = 0;
  for (const s of model.shapes as readonly Shape[]) {
    if (s.count === 0) continue;
    cpu += s.weight * s.cpuMilli;
    gpus += s.weight * s.count * s.computeShare;
  }
  const v = gpus > 0 ? cpu / gpus : null;
  perGpu.set(model, v);
  return v;
}

export const headroom: ScorePlugin = {
  name: 'headroom',
  gpuIdentity: false,
  prepare(ctx) {
    if (ctx.demand.count > 0 || !ctx.workload) return null;
    const k = cpuPerGpu(ctx.workload);
    if (k === null) return null;
    const cpu = ctx.request.cpuMilli;
    const scale = ctx.snapshot.scale.cpuMilli;
    return {
      score(node) {
        let idleGpus = 0;
        const gpus = node.spec.gpus;
        for (let i = 0; i < gpus.length; i++) {
          const g = gpus[i];
          if (g && g.health === 'ok' && g.mig === null && g.computeMilli > 0) idleGpus += (node.gpuComputeFree[i] ?? 0) / g.computeMilli;
        }
        const surplus = (node.cpuFree - cpu - k * idleGpus) / scale;
        return surplus >= 1 ? 1 : surplus <= -1 ? 0 : 0.5 + 0.5 * surplus;
      },
    };
  },
};
