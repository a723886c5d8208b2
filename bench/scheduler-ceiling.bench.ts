// How much of a pod list an offline placer could allocate at the 100% point: the ceiling that
// an online policy's allocation % is measured against (docs/benchmarks.md, "Placement against the
// published FGD on every pod list (issue 21)"). The pods are those the replay has seen when
// arrivals reach 100% of capacity (the same shuffle and copies, arrivals() of src/scheduler/sim),
// for seeds 42-51. Two figures, both on the GPUs alone (no CPU, no node boundaries, no models):
// - `offline`: first-fit decreasing, fractional pods best fit, refusing as many of the pods of
//   more than half a GPU as pays (see offlineMilli): an allocation an offline placer reaches, so
//   the optimum of this relaxed problem is at least this;
// - `bound`: a pod of more than half a GPU holds a GPU of its own, and the gap beside it takes
//   only pods that fit in it; for each such size g (N pods, V the GPU of pods <= 1000 - g), with
//   n of them placed, idle >= (N - n) g (those not placed) and >= n (1000 - g) - V (their gaps
//   left empty), so idle >= min over n of the larger one. No placer, online or not, allocates
//   more than 100% minus the largest such idle.
// Seconds per list, but it runs only when asked:
//   CEILING_PODS=default,gpushare40,multigpu20,gpuspec10,cpu050 [CEILING_SEEDS=42-51] \
//     node --import tsx bench/scheduler-ceiling.bench.ts
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { arrivals } from '../src/scheduler/sim/replay.js';
import { parseNodeList, parsePodList, podGpuMilli, type TracePod } from '../src/scheduler/sim/trace.js';

const listsText = process.env.CEILING_PODS;
if (listsText === undefined) {
  console.log('scheduler-ceiling: set CEILING_PODS (e.g. default,gpushare40) to run it; see the header of this file');
  process.exit(0);
}

/** The pods that have arrived when the GPU they ask for first reaches `capacityMilli`. */
function arrivedBy100(order: readonly TracePod[], capacityMilli: number): TracePod[] {
  const out: TracePod[] = [];
  let asked = 0;
  for (const p of order) {
    out.push(p);
    asked += podGpuMilli(p);
    if (asked >= capacityMilli) break;
  }
  return out;
}

/** The GPU pods, largest first (multi-GPU, then by the share of one GPU): first-fit decreasing's order. */
function decreasing(pods: readonly TracePod[]): TracePod[] {
  const size = (p: TracePod): number => (p.numGpu > 1 ? 1000 : p.gpuMilli);
  return pods.filter((p) => p.numGpu > 0).sort((a, b) => b.numGpu - a.numGpu || size(b) - size(a));
}

/**
 * GPU placed (milli) by first-fit decreasing (`sorted` is in that order) on `gpus` GPUs of 1000
 * milli; fractional pods go to the tightest gap; `refuse` gives, per size, how many pods of that
 * size to leave out.
 */
function firstFitMilli(sorted: readonly TracePod[], gpus: number, refuse: ReadonlyMap<number, number>): number {
  const left = new Map(refuse);
  let whole = 0;
  // GPUs opened by fractional pods, counted by the milli still free on them (0-1000).
  const gaps = new Int32Array(1001);
  let opened = 0;
  let placed = 0;
  for (const p of sorted) {
    if (p.numGpu > 1 || p.gpuMilli >= 1000) {
      if (whole + opened + p.numGpu <= gpus) {
        whole += p.numGpu;
        placed += podGpuMilli(p);
      }
      continue;
    }
    const r = left.get(p.gpuMilli) ?? 0;
    if (r > 0) {
      left.set(p.gpuMilli, r - 1);
      continue;
    }
    let g = p.gpuMilli;
    while (g <= 1000 && gaps[g] === 0) g++;
    if (g <= 1000) gaps[g] = (gaps[g] as number) - 1;
    else if (whole + opened < gpus) {
      opened += 1;
      g = 1000;
    } else continue;
    gaps[g - p.gpuMilli] = (gaps[g - p.gpuMilli] as number) + 1;
    placed += p.gpuMilli;
  }
  return placed;
}

/**
 * The best first-fit decreasing that refuses some pods of more than half a GPU (their GPU, given
 * to smaller pods left over, can hold more than the pod and its unusable gap): per size, largest
 * gap first, the number refused is searched on a coarse then a fine grid, the others held.
 */
function offlineMilli(pods: readonly TracePod[], gpus: number): number {
  const single = pods.filter((p) => p.numGpu === 1 && p.gpuMilli > 500 && p.gpuMilli < 1000);
  const sizes = [...new Set(single.map((p) => p.gpuMilli))].sort((a, b) => b - a);
  const sorted = decreasing(pods);
  const refuse = new Map<number, number>();
  let best = firstFitMilli(sorted, gpus, refuse);
  for (const g of sizes) {
    const n = single.filter((p) => p.gpuMilli === g).length;
    const coarse = Math.max(1, Math.ceil(n / 20));
    let at = 0;
    for (const step of [coarse, Math.max(1, Math.ceil(coarse / 8)), 1]) {
      for (let k = Math.max(0, at - step * 2); k <= Math.min(n, at + step * 20); k += step) {
        refuse.set(g, k);
        const v = firstFitMilli(sorted, gpus, refuse);
        if (v > best) [best, at] = [v, k];
      }
      if (step === 1) break;
    }
    refuse.set(g, at);
  }
  return best;
}

/** The largest idle (milli) any placement must leave, by the bound in this file's header. */
function idleBoundMilli(pods: readonly TracePod[]): number {
  const single = pods.filter((p) => p.numGpu === 1);
  let worst = 0;
  for (const g of new Set(single.filter((p) => p.gpuMilli > 500 && p.gpuMilli < 1000).map((p) => p.gpuMilli))) {
    const N = single.filter((p) => p.gpuMilli === g).length;
    const V = single.filter((p) => p.gpuMilli <= 1000 - g).reduce((s, p) => s + p.gpuMilli, 0);
    // The two lower bounds cross where (N - n) g = n (1000 - g) - V.
    const n = Math.min(N, (N * g + V) / 1000);
    worst = Math.max(worst, (N - n) * g);
  }
  return worst;
}

const T = process.env.CEILING_TRACES !== undefined ? pathToFileURL(`${process.env.CEILING_TRACES}/`) : new URL('../../shared/traces/alibaba-gpu-v2023/', import.meta.url);
const [from, to] = (process.env.CEILING_SEEDS ?? '42-51').split('-').map(Number) as [number, number];
const nodes = parseNodeList(readFileSync(new URL('openb_node_list_gpu_node.csv', T), 'utf8'));
const capacityMilli = nodes.reduce((s, n) => s + n.gpus.reduce((t, g) => t + g.computeMilli, 0), 0);
const mean = (x: readonly number[]): number => x.reduce((s, v) => s + v, 0) / x.length;
const f = (x: number): string => x.toFixed(2);
const range = (x: readonly number[]): string => `${f(Math.min(...x))}-${f(Math.max(...x))}`;

console.log('| pods | seeds | offline (first-fit decreasing), alloc@100% | min-max | bound, alloc@100% | min-max |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const list of listsText.split(',')) {
  const pods = parsePodList(readFileSync(new URL(`openb_pod_list_${list}.csv`, T), 'utf8'));
  const offline: number[] = [];
  const bound: number[] = [];
  for (let seed = from; seed <= to; seed++) {
    const arrived = arrivedBy100(arrivals(pods, capacityMilli, 1.3, seed), capacityMilli);
    offline.push((100 * offlineMilli(arrived, capacityMilli / 1000)) / capacityMilli);
    bound.push(100 - (100 * idleBoundMilli(arrived)) / capacityMilli);
  }
  console.log(`| ${list} | ${from}-${to} | ${f(mean(offline))} | ${range(offline)} | ${f(mean(bound))} | ${range(bound)} |`);
}
