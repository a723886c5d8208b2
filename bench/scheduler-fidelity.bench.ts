// How our replay of a policy compares with the FGD paper's published runs, seed by seed
// (docs/benchmarks.md, "Placement against the published FGD", session 23). Per seed it prints
// the allocation % at 100% and 130% arrived as we report it (the first pod that brings arrivals
// there; the end of the run for 130%) and as the artifact's merge_alloc_discrete.py reads it (the
// mean over every pod whose arrived % rounds to 100, resp. 130), and the published run's value.
// Knobs (environment):
//   FIDELITY_PODS    lists, e.g. default,gpushare40 (required; the bench does nothing without it)
//   FIDELITY_TRACES  folder of the openb_*.csv files (default ../shared/traces/alibaba-gpu-v2023)
//   FIDELITY_SEEDS   e.g. 42-51 (default)
//   FIDELITY_POLICY  e.g. fgd (default) or fragmentation
//   FIDELITY_SHAPES  online (default: learned from arrivals, as the simulator does) or list (the
//                    whole list's shapes in advance and fixed, as the artifact's typical pods)
//   FIDELITY_ORDER   ours (default: simulate's shuffle and copies) or artifact (the artifact's
//                    own order for the seed: bench/lib/go-rand.ts; needs GO_RNG_SOURCE)
//   GO_RNG_SOURCE    a Go source tree's src/math/rand/rng.go (for FIDELITY_ORDER=artifact)
//   ARTIFACT_RESULTS the artifact's experiments/analysis/expected_results/analysis_allo_discrete.csv
//                    (optional: adds the published run of each seed)
// Seconds per seed (the replay).
import { readFileSync } from 'node:fs';
import { policy } from '../src/scheduler/policy.js';
import { replay, type ReplayPoint } from '../src/scheduler/sim/replay.js';
import { parseNodeList, parsePodList } from '../src/scheduler/sim/trace.js';
import { artifactOrder, readGoRngTable } from './lib/go-rand.js';

const lists = process.env.FIDELITY_PODS;
if (lists === undefined) {
  console.log('scheduler-fidelity: set FIDELITY_PODS (e.g. default,gpushare40) to run it; see the header of this file');
  process.exit(0);
}
const dir = process.env.FIDELITY_TRACES ?? '../shared/traces/alibaba-gpu-v2023';
const [s0, s1] = (process.env.FIDELITY_SEEDS ?? '42-51').split('-').map(Number) as [number, number];
const pol = policy(process.env.FIDELITY_POLICY ?? 'fgd');
const shapes = process.env.FIDELITY_SHAPES ?? 'online';
const orderKind = process.env.FIDELITY_ORDER ?? 'ours';
if (!['online', 'list'].includes(shapes) || !['ours', 'artifact'].includes(orderKind)) throw new Error('FIDELITY_SHAPES is online or list; FIDELITY_ORDER is ours or artifact');
const goTable = orderKind === 'artifact' ? readGoRngTable(process.env.GO_RNG_SOURCE ?? '') : null;

/** list -> seed -> [100, 130] of the artifact's FGD run. */
const published = new Map<string, [number, number]>();
if (process.env.ARTIFACT_RESULTS) {
  const lines = readFileSync(process.env.ARTIFACT_RESULTS, 'utf8').split(/\r?\n/);
  const header = (lines[0] ?? '').split(',');
  const c100 = header.indexOf('100');
  const c130 = header.indexOf('130');
  for (const line of lines.slice(1)) {
    const cells = line.split(',');
    if (cells[1] === '06-FGD') published.set(`${(cells[0] ?? '').replace('openb_pod_list_', '')}/${cells[3]}`, [Number(cells[c100]), Number(cells[c130])]);
  }
}

/** Python's round() of a float to an integer: half to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** merge_alloc_discrete.py: the mean allocation (each rounded to 0.01) of the pods whose arrived % rounds to `at`, else to at-1..at+1. */
function artifactPoint(curve: readonly ReplayPoint[], at: number): number {
  let v = curve.filter((p) => roundHalfEven(p.arrived) === at);
  if (v.length === 0) v = curve.filter((p) => Math.abs(roundHalfEven(p.arrived) - at) <= 1);
  return v.reduce((s, p) => s + Math.round(p.allocated * 100) / 100, 0) / v.length;
}

const nodes = parseNodeList(readFileSync(`${dir}/openb_node_list_gpu_node.csv`, 'utf8'));
const capacityMilli = nodes.reduce((s, n) => s + n.gpus.reduce((t, g) => t + g.computeMilli, 0), 0);
console.log(`policy ${pol.name}, shapes ${shapes}, order ${orderKind}; allocation % at 100% / 130% arrived`);
for (const l of lists.split(',')) {
  const pods = parsePodList(readFileSync(`${dir}/openb_pod_list_${l}.csv`, 'utf8'));
  const sums = [0, 0, 0, 0, 0, 0];
  let n = 0;
  let withPub = 0;
  for (let seed = s0; seed <= s1; seed++) {
    const t0 = process.cpuUsage();
    const order = goTable ? artifactOrder(goTable, pods, capacityMilli, 1.3, seed) : undefined;
    const r = replay(nodes, pods, { policy: pol, seed, inflate: 1.3, ...(order ? { order } : {}), ...(shapes === 'list' ? { prior: pods, learn: false } : {}) });
    const cpu = process.cpuUsage(t0);
    const row = [r.allocatedAt100 ?? NaN, r.allocatedAtInflate, artifactPoint(r.curve, 100), artifactPoint(r.curve, 130)];
    const pub = published.get(`${l}/${seed}`);
    row.forEach((x, k) => (sums[k] = (sums[k] ?? 0) + x));
    if (pub) {
      withPub += 1;
      sums[4] = (sums[4] ?? 0) + pub[0];
      sums[5] = (sums[5] ?? 0) + pub[1];
    }
    n += 1;
    const f = (x: number): string => x.toFixed(2);
    console.log(`${l} seed ${seed}: ours ${f(row[0] as number)} / ${f(row[1] as number)}, as the artifact reads it ${f(row[2] as number)} / ${f(row[3] as number)}${pub ? `, published ${f(pub[0])} / ${f(pub[1])}` : ''} (${((cpu.user + cpu.system) / 1e6).toFixed(1)} s)`);
  }
  const m = (k: number, d = n): string => ((sums[k] ?? 0) / d).toFixed(2);
  console.log(`${l} mean of ${n}: ours ${m(0)} / ${m(1)}, as the artifact reads it ${m(2)} / ${m(3)}${withPub === n ? `, published ${m(4)} / ${m(5)}` : ''}`);
}
