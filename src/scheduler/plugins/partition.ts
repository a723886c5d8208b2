/**
 * SM partitions (isolation `sm-partition`) as a filter: a partition gets a fixed run of SMs on
 * each of its GPUs, placed so that partitions on one GPU never share an SM, and partitions and
 * time-sliced work never share a GPU (a process outside the partitions' MPS server time-slices
 * with all of them, which is the slowdown partitions exist to avoid). The arithmetic is the
 * domain's (domain/smpartition.ts: sizes, first fit on group boundaries within the SMs the
 * driver groups); this module says, per GPU, whether it fits and if not why, and where the
 * partition goes once the engine has chosen its GPUs. The fast path (feasibility.ts) asks the
 * same `partitionReason`, so both paths agree by construction.
 */
import { firstFit, freeSms, largestFreeRun, largestPartitionPercent, partitionEnd, partitionPercent, partitionRange, type SmRange } from '../../domain/index.js';
import type { CycleContext, FilterPlugin } from '../framework.js';
import type { GpuReason, NodeState } from '../types.js';

/** What a partition request asks of each GPU: a size from its share, or fixed ranges (resuming). */
export interface PartitionAsk {
  /** The whole percent the share becomes (libgpushare's GPUSHARE_COMPUTE_LIMIT). */
  readonly percent: number;
  /** The ranges it must have, one per GPU in placement order; null: first fit. */
  readonly fixed: readonly SmRange[] | null;
}

/** The partition ask of `ctx`'s request, or null when it is not an sm-partition request. */
export function partitionAsk(ctx: Pick<CycleContext, 'request' | 'demand'>): PartitionAsk | null {
  if (!ctx.demand.partition) return null;
  const s = ctx.request.slice;
  const fixed = ctx.request.smRanges ?? null;
  return { percent: s.compute === null ? 100 : partitionPercent(s.compute), fixed: fixed !== null && fixed.length > 0 ? fixed : null };
}

function overlaps(taken: readonly SmRange[], offset: number, count: number): boolean {
  for (const r of taken) if (offset < r.offset + r.count && r.offset < offset + count) return true;
  return false;
}

/**
 * Why GPU `i` of `node` cannot take the partition `ask`, or null. A resuming partition with
 * ranges on several GPUs needs each of its GPUs to fit every one of them (the engine assigns
 * them in order once it has chosen the GPUs; they are the same range but for rare cases).
 */
export function partitionReason(node: NodeState, i: number, ask: PartitionAsk): GpuReason | null {
  const g = node.spec.gpus[i];
  if (!g) return { kind: 'gpuUnhealthy', gpu: i };
  const sm = g.sm;
  if (!sm.ok) return sm.cause === 'computeCapability' ? { kind: 'notPartitionable', gpu: i, name: g.name, cause: sm.cause, computeCapability: sm.computeCapability } : { kind: 'notPartitionable', gpu: i, name: g.name, cause: sm.cause };
  if ((node.gpuSlices[i] ?? 0) > (node.gpuPartitions[i] ?? 0)) return { kind: 'isolationMix', gpu: i, holding: 'time-slice' };
  const layout = sm.layout;
  const taken = node.gpuSmRanges[i] ?? [];
  if (ask.fixed !== null) {
    for (const want of ask.fixed) {
      if (overlaps(taken, want.offset, want.count) || want.offset + want.count > partitionEnd(layout, want.count)) return { kind: 'smRangeTaken', gpu: i, offset: want.offset, count: want.count };
    }
    return null;
  }
  const count = partitionRange(layout, ask.percent);
  if (firstFit(layout, taken, count) !== null) return null;
  if (firstFit(layout, [], count) === null) {
    return { kind: 'partitionTooLarge', gpu: i, percent: ask.percent, wantSms: count, groupableSms: layout.groupable, totalSms: layout.total, largestPercent: largestPartitionPercent(layout) };
  }
  return { kind: 'noFreeSmRun', gpu: i, wantSms: count, largestFreeRun: largestFreeRun(layout, taken), freeSms: freeSms(layout, taken), groupableSms: layout.groupable };
}

/** Where the partition goes on GPU `i`, the `position`-th GPU of its placement (which passed partitionReason). */
export function partitionRangeOn(node: NodeState, i: number, position: number, ask: PartitionAsk): SmRange {
  const fixed = ask.fixed?.[position] ?? ask.fixed?.[0];
  if (fixed !== undefined) return { offset: fixed.offset, count: fixed.count };
  const sm = node.spec.gpus[i]?.sm;
  const range = sm?.ok ? firstFit(sm.layout, node.gpuSmRanges[i] ?? [], partitionRange(sm.layout, ask.percent)) : null;
  if (range === null) throw new Error(`bug: GPU ${i} of ${node.spec.name} passed the partition filter but has no free SM run`);
  return range;
}

/** A GPU that holds partitions takes no time-sliced (or exclusive) work, and a partition needs its SMs free. */
export const smPartition: FilterPlugin = {
  name: 'smPartition',
  prepare(ctx) {
    const { demand } = ctx;
    if (demand.count === 0 || demand.mig) return null;
    const ask = partitionAsk(ctx);
    if (ask === null) return { gpu: (node, i) => ((node.gpuPartitions[i] ?? 0) > 0 ? { kind: 'isolationMix', gpu: i, holding: 'sm-partition' } : null) };
    return { gpu: (node, i) => partitionReason(node, i, ask) };
  },
};
