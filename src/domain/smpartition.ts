/**
 * SM partitions (isolation `sm-partition`): how many SMs a compute share becomes, and where on
 * the GPU a partition goes so that partitions side by side never share an SM. libgpushare
 * (native/shim/partition.c) makes the green context; the node daemon chooses each task's
 * range here and passes its start as GPUSHARE_SM_OFFSET. Pure: no I/O.
 */
import type { Gpu } from './gpu.js';
import { fail, ok, type Result } from './result.js';
import { sharePercent } from './units.js';

/** A run of SMs in the driver's split order: `count` SMs from SM `offset`. */
export interface SmRange {
  readonly offset: number;
  readonly count: number;
}

/** How a GPU splits into partitions: `total` SMs, the smallest group `min`, sizes above it in steps of `step`. */
export interface SmLayout {
  readonly total: number;
  readonly min: number;
  readonly step: number;
  /**
   * SMs the driver can put in groups of `min` (a multiple of it, at most `total`): partitions
   * side by side must fit in these. An H200's driver makes 15 groups of 8 of its 132 SMs (GPCs
   * that floor-sweeping left with too few SMs for a group give theirs to the remainder).
   */
  readonly groupable: number;
}

/** What the driver says of a GPU's green-context groups (gpushare-smprobe; see SmLayout). */
export interface SmGroups {
  readonly min: number;
  readonly step: number;
  readonly groupable: number;
}

/**
 * SMs per GPU by board name, for drivers whose NVML does not report them for a whole GPU
 * (nvmlDeviceGetAttributes_v2 answers for MIG instances only on some drivers). Hopper and newer
 * only: older GPUs cannot be partitioned anyway. Order matters: the first match wins.
 */
const SM_COUNT_BY_NAME: readonly (readonly [RegExp, number])[] = [
  [/\bH100\b.*\bPCIe\b/i, 114],
  [/\bH100\b|\bH200\b|\bGH200\b|\bH800\b/i, 132],
  [/\bH20\b/i, 78],
  [/\bB200\b/i, 148],
];

/**
 * The SM layout of a GPU that can be partitioned. Green contexts need compute capability 9.0
 * (Hopper) or newer, where the driver splits in groups of 8 SMs and steps of 8 (NVIDIA's
 * green-context guide; partition.c asks the driver, and got 8 and 8 on an H200). `groups` is
 * what the driver said (gpushare-smprobe); without it every whole group of 8 is assumed
 * usable, which a floor-swept GPU may not have (libgpushare then refuses the partition that
 * does not fit, at the task's start, with the driver's numbers).
 */
export function smLayout(gpu: Pick<Gpu, 'name' | 'computeCapability' | 'multiprocessorCount'>, groups: SmGroups | null = null): Result<SmLayout> {
  const support = smSupport(gpu, groups);
  if (support.ok) return ok(support.layout);
  return fail('isolation', 'unsupported', describeSmUnsupported(gpu.name, support));
}

/** A GPU's SM layout, or why it has none (the scheduler's GpuSpec carries this; see smLayout). */
export type SmSupport =
  | { readonly ok: true; readonly layout: SmLayout }
  | { readonly ok: false; readonly cause: 'computeCapability'; readonly computeCapability: string | null }
  | { readonly ok: false; readonly cause: 'smCountUnknown' };

/** smLayout as data: the layout, or the cause (compute capability under 9.0 or unknown; SM count unknown). */
export function smSupport(gpu: Pick<Gpu, 'name' | 'computeCapability' | 'multiprocessorCount'>, groups: SmGroups | null = null): SmSupport {
  const major = gpu.computeCapability === null ? NaN : Number(gpu.computeCapability.split('.')[0]);
  if (!(major >= 9)) return { ok: false, cause: 'computeCapability', computeCapability: gpu.computeCapability };
  const total = gpu.multiprocessorCount ?? SM_COUNT_BY_NAME.find(([re]) => re.test(gpu.name))?.[1] ?? null;
  if (total === null || total <= 0) return { ok: false, cause: 'smCountUnknown' };
  const { min, step, groupable } = groups ?? { min: 8, step: 8, groupable: total };
  const within = Math.min(groupable, total);
  return { ok: true, layout: { total, min, step, groupable: within - (within % min) } };
}

/** Why a GPU (board name `name`) cannot be partitioned, in a sentence. */
export function describeSmUnsupported(name: string, why: { readonly cause: 'computeCapability'; readonly computeCapability: string | null } | { readonly cause: 'smCountUnknown' }): string {
  return why.cause === 'computeCapability'
    ? `sm-partition needs compute capability 9.0 (Hopper) or newer; ${name} is ${why.computeCapability ?? 'of unknown compute capability'}`
    : `the number of SMs of ${name} is unknown (the driver does not report it and it is not in gpushare's table)`;
}

/**
 * The whole percent libgpushare is given for a compute share (what the partition's size is
 * computed from): rounded down, so a task never gets more than reserved, and at least 1.
 */
export function partitionPercent(compute: number): number {
  return Math.max(1, Math.floor(sharePercent(compute)));
}

/** The largest percent under 100 whose partition fits this layout alone (0: none does). */
export function largestPartitionPercent(layout: SmLayout): number {
  let most = 99;
  while (most > 0 && firstFit(layout, [], partitionRange(layout, most)) === null) most--;
  return most;
}

/**
 * SMs for `percent` of `total`: the nearest size the driver makes (the minimum, or a multiple of
 * `step`), a tie going down so two halves fit side by side (50% of 132 is 64, not 72). The same
 * arithmetic as `gs_partition_round` in native/shim/partition.c, step for step; the parity
 * test runs both on one table.
 */
export function partitionSize(percent: number, total: number, min: number, step: number): number {
  const want = (percent * total) / 100;
  const s = step === 0 ? 1 : step;
  let lo = Math.floor(want / s) * s;
  let hi = Math.ceil(want / s) * s;
  if (lo < min) lo = min;
  if (hi < min) hi = min;
  let pick = want - lo <= hi - want ? lo : hi;
  if (pick > total) pick = lo <= total ? lo : total;
  return pick;
}

/** The SMs a compute share takes on this layout; 100% (libgpushare: no partition) is the whole GPU. */
export function partitionRange(layout: SmLayout, percent: number): number {
  return percent >= 100 ? layout.total : partitionSize(percent, layout.total, layout.min, layout.step);
}

/**
 * The first free run of `count` SMs that starts on a group boundary and lies within the
 * groupable SMs (libgpushare builds the partition from whole groups of the driver's split, from
 * group `offset / min`), or null when no such run is free even if enough SMs are free in total.
 * The whole GPU (`total`) is no partition and takes every SM.
 */
export function firstFit(layout: SmLayout, taken: readonly SmRange[], count: number): SmRange | null {
  if (count <= 0 || count > layout.total) return null;
  if (count !== layout.total && (count % layout.min !== 0 || count > layout.groupable)) return null;
  const end = partitionEnd(layout, count);
  const overlaps = (offset: number): boolean => taken.some((r) => offset < r.offset + r.count && r.offset < offset + count);
  for (let offset = 0; offset + count <= end; offset += layout.min) {
    if (!overlaps(offset)) return { offset, count };
  }
  return null;
}

/** Where a partition of `count` SMs must end by: the groupable SMs, or every SM for the whole GPU (no partition). */
export function partitionEnd(layout: SmLayout, count: number): number {
  return count === layout.total ? layout.total : layout.groupable;
}

/** Groupable SMs free (for messages: "16 SMs free, but not 24 in a row"). */
export function freeSms(layout: SmLayout, taken: readonly SmRange[]): number {
  let free = 0;
  for (let sm = 0; sm < layout.groupable; sm++) if (!taken.some((r) => sm >= r.offset && sm < r.offset + r.count)) free++;
  return free;
}

/**
 * The largest partition that `firstFit` could place now (for messages: "the largest free run
 * is 24 SMs"): the longest run of free SMs from a group boundary, within the groupable SMs, in
 * whole groups.
 */
export function largestFreeRun(layout: SmLayout, taken: readonly SmRange[]): number {
  let best = 0;
  for (let offset = 0; offset < layout.groupable; offset += layout.min) {
    let end = offset;
    while (end < layout.groupable && !taken.some((r) => end >= r.offset && end < r.offset + r.count)) end++;
    const run = end - offset - ((end - offset) % layout.min);
    if (run > best) best = run;
  }
  return best;
}
