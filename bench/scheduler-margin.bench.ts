// Does `fragmentation` beat FGD? Variants of it against the `fgd` port, over two disjoint seed
// ranges, with mean, min-max and the standard error of the mean of the allocation % at 100%
// arrived (docs/benchmarks.md, "Scheduler: trace replay (issue 5)"). Minutes per variant, so it
// runs only when asked:
//   MARGIN_VARIANTS=fgd,fragmentation,gpuweighted [MARGIN_SEEDS=42-51] [MARGIN_PODS=default] \
//     node --import tsx bench/scheduler-margin.bench.ts
// A variant is a policy (as `simulate --policy` takes it) or one of the named experiments below.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { ScorePlugin } from '../src/scheduler/framework.js';
import { bestfit, fragmentation } from '../src/scheduler/plugins/scores.js';
import { parsePolicy, type Policy } from '../src/scheduler/policy.js';
import { replay } from '../src/scheduler/sim/replay.js';
import { parseNodeList, parsePodList } from '../src/scheduler/sim/trace.js';
import type { WorkloadModel } from '../src/scheduler/workload.js';

const variantsText = process.env.MARGIN_VARIANTS;
if (variantsText === undefined) {
  console.log('scheduler-margin: set MARGIN_VARIANTS (e.g. fgd,fragmentation) to run it; see the header of this file');
  process.exit(0);
}

/** The model with each shape's weight scaled by the GPU it asks for (count x share) to the power `pow`. */
const reweightedModels = new WeakMap<WorkloadModel, Map<number, WorkloadModel>>();
function gpuWeighted(m: WorkloadModel, pow: number): WorkloadModel {
  let byPow = reweightedModels.get(m);
  if (!byPow) reweightedModels.set(m, (byPow = new Map()));
  let d = byPow.get(pow);
  if (!d) {
    const w = m.shapes.map((s) => s.weight * Math.pow(Math.max(s.count * s.computeShare, 0.05), pow));
    const sum = w.reduce((a, b) => a + b, 0);
    d = { version: m.version, shapes: m.shapes.map((s, i) => ({ ...s, weight: (w[i] ?? 0) / sum })) };
    byPow.set(pow, d);
  }
  return d;
}
function reweighted(base: ScorePlugin, pow: number): ScorePlugin {
  return { ...base, prepare: (ctx) => base.prepare({ ...ctx, workload: ctx.workload ? gpuWeighted(ctx.workload, pow) : null }) };
}

/** Experiments that are not plain policies. */
const NAMED: Record<string, Policy> = {
  // Typical shapes weighted by the GPU they ask for, not by how often they arrive.
  gpuweighted: { name: 'gpuweighted', plugins: [{ plugin: reweighted(fragmentation, 1), weight: 1 }, { plugin: bestfit, weight: 0.006 }] },
  gpuweighted05: { name: 'gpuweighted05', plugins: [{ plugin: reweighted(fragmentation, 0.5), weight: 1 }, { plugin: bestfit, weight: 0.006 }] },
  // fragmentation with FGD's tie-break (first node by name) instead of the seeded hash.
  fragfirst: { name: 'fragfirst', plugins: [{ plugin: { ...fragmentation, tieMode: 'first' }, weight: 1 }, { plugin: bestfit, weight: 0.006 }] },
};

// The traces sit in shared/ beside the checkout (../shared from the repository root); a git
// worktree one level deeper finds them through MARGIN_TRACES.
const T = process.env.MARGIN_TRACES !== undefined ? pathToFileURL(`${process.env.MARGIN_TRACES}/`) : new URL('../../shared/traces/alibaba-gpu-v2023/', import.meta.url);
const list = process.env.MARGIN_PODS ?? 'default';
const [from, to] = (process.env.MARGIN_SEEDS ?? '42-51').split('-').map(Number) as [number, number];
const nodes = parseNodeList(readFileSync(new URL('openb_node_list_gpu_node.csv', T), 'utf8'));
const pods = parsePodList(readFileSync(new URL(`openb_pod_list_${list}.csv`, T), 'utf8'));
const mean = (x: readonly number[]): number => x.reduce((s, v) => s + v, 0) / x.length;
const se = (x: readonly number[]): number => Math.sqrt(x.reduce((s, v) => s + (v - mean(x)) ** 2, 0) / (x.length - 1) / x.length);

console.log('| pods | seeds | variant | alloc@100% mean | min-max | s.e. | alloc@130% mean | per seed |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const name of variantsText.split(',')) {
  let policy = NAMED[name];
  if (!policy) {
    const r = parsePolicy(name);
    if (!r.ok) throw new Error(`${name}: not a policy or a named variant (${Object.keys(NAMED).join(', ')})`);
    policy = r.value;
  }
  const at100: number[] = [];
  const at130: number[] = [];
  for (let seed = from; seed <= to; seed++) {
    const r = replay(nodes, pods, { policy, seed, inflate: 1.3 });
    at100.push(r.allocatedAt100 ?? 0);
    at130.push(r.allocatedAtInflate);
  }
  const f = (x: number): string => x.toFixed(2);
  console.log(`| ${list} | ${from}-${to} | ${name} | ${f(mean(at100))} | ${f(Math.min(...at100))}-${f(Math.max(...at100))} | ${se(at100).toFixed(3)} | ${f(mean(at130))} | ${at100.map(f).join(' ')} |`);
}
