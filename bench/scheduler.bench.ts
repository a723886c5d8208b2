// Scheduler decision speed: decisions/s and p50/p99 decision time on synthetic clusters of
// 1,000 and 10,000 nodes x 8 GPUs at 50% and 90% GPU occupancy, one core, for every policy,
// beside a naive first-fit (the first node, in order, with room; no scoring) as a floor.
// Budget (docs/DESIGN.md): p99 <= 2 ms and >= 5,000 decisions/s on 1,000 x 8.
// Method: build the cluster once; decide a fixed mix of requests (40% quarter-GPU shares,
// 30% half shares, 20% whole GPUs, 10% two GPUs), timing each decision with performance.now(),
// in two modes:
// - churn (the budget's mode): each placement is committed and then a random existing placement
//   (of any node) is removed, so the occupancy stays put while two nodes change per decision and
//   the per-node memo (src/scheduler/memo.ts) sees realistic invalidation; only schedule() is
//   timed, not the commit or the removal;
// - static: nothing is committed, every decision sees the same cluster (the memo is all hits
//   after the first decision of each shape): the best case, for comparison.
// A warm-up pass first. `--quick` decides fewer requests; `--static` adds the static mode;
// `--cpu` times each decision by the process's CPU time (process.cpuUsage: user + system, all
// threads, so GC helpers count) instead of the wall clock, for a machine shared with other
// work, where wall time also counts the time the OS gave to other processes.
import { PRIORITY_LEVELS } from '../src/domain/index.js';
import { schedule } from '../src/scheduler/engine.js';
import { policy } from '../src/scheduler/policy.js';
import { createPrng } from '../src/scheduler/prng.js';
import { DecisionMemo } from '../src/scheduler/memo.js';
import { buildSnapshot, nodeState, withPlacement } from '../src/scheduler/snapshot.js';
import type { Prng } from '../src/scheduler/prng.js';
import type { ClusterSnapshot, GpuSpec, NodeSpec, Placement, PlacementRequest } from '../src/scheduler/types.js';
import { fixedWorkload } from '../src/scheduler/workload.js';

/** An H100's SM layout (132 SMs in groups of 8): the bench's requests are time-sliced, so it is only carried. */
const HOPPER = { ok: true, layout: { total: 132, min: 8, step: 8, groupable: 128 } } as const;

const GIB = 2 ** 30;

function cluster(nodes: number, occupancy: number, seed: number) {
  const rng = createPrng(seed);
  const specs: NodeSpec[] = [];
  const placements: Placement[] = [];
  for (let n = 0; n < nodes; n++) {
    const name = `node-${n}`;
    const gpus: GpuSpec[] = Array.from({ length: 8 }, (_, i) => ({
      index: i, uuid: `${name}-${i}`, model: 'H100-80GB', name: 'NVIDIA H100 80GB HBM3', memoryBytes: 80 * GIB,
      computeMilli: 1000, numaNode: i < 4 ? 0 : 1, health: 'ok', links: [], mig: null, sm: HOPPER,
    }));
    specs.push({ name, cpuMilli: 128_000, memoryBytes: 1024 * GIB, gpus });
    for (let i = 0; i < 8; i++) {
      // Used quarters per GPU, drawn so the mean is `occupancy`.
      let quarters = 0;
      for (let q = 0; q < 4; q++) if (rng.next() < occupancy) quarters += 1;
      for (let q = 0; q < quarters; q++) {
        placements.push({
          id: `${name}-${i}-${q}`, node: name, gpus: [{ gpu: i, memoryBytes: 20 * GIB, computeMilli: 250, mig: null }],
          cpuMilli: 2000, memoryBytes: 8 * GIB, priority: PRIORITY_LEVELS.normal, tenant: null, exclusive: false, suspendable: false, gang: null,
        });
      }
    }
  }
  return buildSnapshot(specs, placements);
}

function req(k: number): PlacementRequest {
  const r = k % 10;
  const base = { priority: PRIORITY_LEVELS.normal, isolation: 'time-slice' as const, migProfile: null, models: { include: [], exclude: [] }, uuids: { include: [], exclude: [] }, numaNode: null };
  const slice =
    r < 4 ? { ...base, gpus: 1, memory: { kind: 'fraction' as const, fraction: 0.25 }, compute: 0.25 }
    : r < 7 ? { ...base, gpus: 1, memory: { kind: 'fraction' as const, fraction: 0.5 }, compute: 0.5 }
    : r < 9 ? { ...base, gpus: 1, memory: null, compute: null }
    : { ...base, gpus: 2, memory: null, compute: null };
  return { id: `r${k}`, slice, cpuMilli: 4000, memoryBytes: 16 * GIB, tenant: null, gang: null, suspendable: false, policy: null };
}

// SCHED_BENCH_WIDE=1: the model also has the mix's two-GPU request (1 in 10), which makes
// `scarcity` (a multi-GPU shape's last nodes) do its per-decision pass over the cluster.
const wide = process.env.SCHED_BENCH_WIDE === '1';
const workload = fixedWorkload(
  [
    ...[0.25, 0.5, 1].map((share) => ({ cpuMilli: 4000, memoryBytes: 0, count: 1, computeShare: share, gpuMemory: share === 1 ? null : { kind: 'fraction' as const, fraction: share }, models: [] })),
    ...(wide ? [{ cpuMilli: 4000, memoryBytes: 0, count: 2, computeShare: 1, gpuMemory: null, models: [] }] : []),
  ],
  wide ? [4, 3, 2, 1] : [4, 3, 3],
);

/** The floor: the first node (in order) with CPU, memory and enough GPUs that fit; no scores. */
function firstFit(snap: ClusterSnapshot, r: PlacementRequest): boolean {
  const s = r.slice;
  const whole = s.memory === null && s.compute === null;
  for (const n of snap.nodes) {
    if (n.cpuFree < r.cpuMilli || n.memoryFree < r.memoryBytes) continue;
    let fit = 0;
    for (let i = 0; i < n.spec.gpus.length && fit < s.gpus; i++) {
      const g = n.spec.gpus[i] as GpuSpec;
      const mem = whole ? g.memoryBytes : s.memory?.kind === 'fraction' ? Math.floor((s.memory.fraction * g.memoryBytes) / 2 ** 20) * 2 ** 20 : g.memoryBytes;
      const compute = whole ? g.computeMilli : Math.round((s.compute ?? 0) * g.computeMilli);
      if (g.health === 'ok' && !n.gpuExclusive[i] && (n.gpuMemoryFree[i] ?? 0) >= mem && (n.gpuComputeFree[i] ?? 0) >= compute) fit += 1;
    }
    if (fit >= s.gpus) return true;
  }
  return false;
}

/** The snapshot without one placement chosen at random (a departure). */
function withoutRandom(snap: ClusterSnapshot, rng: Prng): ClusterSnapshot {
  for (;;) {
    const n = rng.int(snap.nodes.length);
    const node = snap.nodes[n];
    if (!node || node.placements.length === 0) continue;
    const k = rng.int(node.placements.length);
    const nodes = snap.nodes.slice();
    nodes[n] = nodeState(node.spec, n, node.placements.filter((_, j) => j !== k));
    return { ...snap, nodes };
  }
}

function measure(start: ClusterSnapshot, nodes: number, occupancy: number, policyName: string, decisions: number, churn: boolean) {
  const opts = { policy: policy(policyName === 'first-fit' ? 'random' : policyName), rng: createPrng(1), workload, explain: false, memo: new DecisionMemo() };
  const departures = createPrng(2);
  let snap = start;
  // Decides (timed), then commits the placement and removes a random one (untimed). First-fit
  // is no engine: under churn its cluster evolves by random's placements (untimed too).
  const ffOpts = { ...opts, rng: createPrng(3) };
  const timed = (k: number): [boolean, number] => {
    const r = req(k);
    let d: ReturnType<typeof schedule> | null = null;
    let ok: boolean;
    const t = clock();
    if (policyName === 'first-fit') ok = firstFit(snap, r);
    else {
      d = schedule(snap, r, opts);
      ok = d.status === 'ok';
    }
    const dt = clock() - t;
    if (churn) {
      d ??= schedule(snap, r, ffOpts);
      if (d.status === 'ok') snap = withoutRandom(withPlacement(snap, d.placement), departures);
    }
    return [ok, dt];
  };
  for (let k = 0; k < Math.min(500, decisions); k++) timed(k);
  const times = new Float64Array(decisions);
  let placed = 0;
  let total = 0;
  for (let k = 0; k < decisions; k++) {
    const [ok, dt] = timed(k);
    times[k] = dt;
    total += dt;
    if (ok) placed += 1;
  }
  times.sort();
  const pct = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0;
  return { nodes, occupancy, mode: churn ? 'churn' : 'static', policy: policyName, decisions, perSec: (decisions / total) * 1000, p50: pct(0.5), p99: pct(0.99), placed: placed / decisions };
}

/** Milliseconds, by the wall clock or (--cpu) by the process's CPU time. */
const clock = process.argv.includes('--cpu')
  ? (): number => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    }
  : (): number => performance.now();

// SCHED_BENCH_POLICIES=fgd,bestfit limits the run to those, or to any policy text
// (fragmentation+scarcity:1); first-fit always runs: it is the floor.
const POLICIES =
  process.env.SCHED_BENCH_POLICIES === undefined
    ? ['first-fit', 'random', 'binpack', 'spread', 'bestfit', 'topology', 'fragmentation', 'fgd']
    : ['first-fit', ...process.env.SCHED_BENCH_POLICIES.split(',').filter((p) => p !== 'first-fit')];
const rows = [];
const quick = process.argv.includes('--quick');
const modes = process.argv.includes('--static') ? [true, false] : [true];
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const sizes = wanted.length > 0 ? wanted.map(Number) : [1000, 10_000];
for (const nodes of sizes) {
  for (const occupancy of [0.5, 0.9]) {
    const snap = cluster(nodes, occupancy, 42);
    for (const churn of modes) {
      for (const p of POLICIES) {
        rows.push(measure(snap, nodes, occupancy, p, nodes >= 10_000 ? (quick ? 100 : 500) : quick ? 500 : 3000, churn));
      }
    }
  }
}
console.log('| nodes x GPUs | occupancy | mode | policy | decisions | decisions/s | p50 ms | p99 ms | p50 / first-fit | placed | budget (1,000 x 8) |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  const floor = rows.find((x) => x.nodes === r.nodes && x.occupancy === r.occupancy && x.mode === r.mode && x.policy === 'first-fit');
  const ratio = floor && r.policy !== 'first-fit' ? `${(r.p50 / Math.max(floor.p50, 1e-6)).toFixed(1)}x` : '1x';
  const budget = r.nodes === 1000 && r.policy !== 'first-fit' ? (r.p99 <= 2 && r.perSec >= 5000 ? 'ok' : 'MISSED') : '';
  console.log(`| ${r.nodes} x 8 | ${r.occupancy * 100}% | ${r.mode} | ${r.policy} | ${r.decisions} | ${r.perSec.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${ratio} | ${(r.placed * 100).toFixed(0)}% | ${budget} |`);
}
