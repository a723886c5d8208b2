// Sweep of the `fragmentation` policy's best-fit tie-break weight on a trace pod list, 10 seeds
// (docs/benchmarks.md, "Scheduler: trace replay (issue 5)"). Minutes per weight, so it runs only
// when asked:
//   SWEEP_WEIGHTS=0,0.004,0.006,0.01 [SWEEP_PODS=default] [SWEEP_COVERAGE=0.95] \
//     node --import tsx bench/scheduler-sweep.bench.ts
// Each weight w replays fragmentation:1 + bestfit:w (topology is inert on the trace: no links).
import { readFileSync } from 'node:fs';
import { bestfit, fragmentation } from '../src/scheduler/plugins/scores.js';
import { replay } from '../src/scheduler/sim/replay.js';
import { parseNodeList, parsePodList } from '../src/scheduler/sim/trace.js';

const weights = process.env.SWEEP_WEIGHTS;
if (weights === undefined) {
  console.log('scheduler-sweep: set SWEEP_WEIGHTS (e.g. 0,0.004,0.006,0.01) to run it; see the header of this file');
  process.exit(0);
}
const T = new URL('../../shared/traces/alibaba-gpu-v2023/', import.meta.url);
const list = process.env.SWEEP_PODS ?? 'default';
const coverage = Number(process.env.SWEEP_COVERAGE ?? '0.95');
const nodes = parseNodeList(readFileSync(new URL('openb_node_list_gpu_node.csv', T), 'utf8'));
const pods = parsePodList(readFileSync(new URL(`openb_pod_list_${list}.csv`, T), 'utf8'));
const mean = (x: readonly number[]): number => x.reduce((s, v) => s + v, 0) / x.length;
console.log(`| pods | coverage | best-fit weight | alloc@100% mean | min-max | alloc@130% mean |`);
console.log('| --- | --- | --- | --- | --- | --- |');
for (const w of weights.split(',').map(Number)) {
  const plugins = w > 0 ? [{ plugin: fragmentation, weight: 1 }, { plugin: bestfit, weight: w }] : [{ plugin: fragmentation, weight: 1 }];
  const at100: number[] = [];
  const at130: number[] = [];
  for (let seed = 42; seed <= 51; seed++) {
    const r = replay(nodes, pods, { policy: { name: `fragmentation+bestfit:${w}`, plugins }, seed, inflate: 1.3, shapeCoverage: coverage });
    at100.push(r.allocatedAt100 ?? 0);
    at130.push(r.allocatedAtInflate);
  }
  console.log(`| ${list} | ${coverage} | ${w} | ${mean(at100).toFixed(2)} | ${Math.min(...at100).toFixed(2)}-${Math.max(...at100).toFixed(2)} | ${mean(at130).toFixed(2)} |`);
}
