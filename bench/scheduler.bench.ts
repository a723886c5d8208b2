// Scheduler decision speed: decisions/s and p50/p99 decision time on synthetic clusters of
// 1,000 and 10,000 nodes x 8 GPUs at 50% and 90% GPU occupancy, one core, per policy.
// Budget (docs/DESIGN.md): p99 <= 2 ms and >= 5,000 decisions/s on 1,000 x 8.
// Method: build the cluster once; decide a fixed mix of requests (40% quarter-GPU shares,
// 30% half shares, 20% whole GPUs, 10% two GPUs) without committing them, so every decision
// sees the same occupancy; time each decision with performance.now(). A warm-up pass first.
import { PRIORITY_LEVELS } from '../src/domain/index.js';
import { schedule } from '../src/scheduler/engine.js';
import { policy } from '../src/scheduler/policy.js';
import { createPrng } from '../src/scheduler/prng.js';
import { buildSnapshot } from '../src/scheduler/snapshot.js';
import type { GpuSpec, NodeSpec, Placement, PlacementRequest } from '../src/scheduler/types.js';
import { fixedWorkload } from '../src/scheduler/workload.js';

const GIB = 2 ** 30;

function cluster(nodes: number, occupancy: number, seed: number) {
  const rng = createPrng(seed);
  const specs: NodeSpec[] = [];
  const placements: Placement[] = [];
  for (let n = 0; n < nodes; n++) {
    const name = `node-${n}`;
    const gpus: GpuSpec[] = Array.from({ length: 8 }, (_, i) => ({
      index: i, uuid: `${name}-${i}`, model: 'H100-80GB', name: 'NVIDIA H100 80GB HBM3', memoryBytes: 80 * GIB,
      computeMilli: 1000, numaNode: i < 4 ? 0 : 1, health: 'ok', links: [], mig: null,
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

const workload = fixedWorkload(
  [0.25, 0.5, 1].map((share) => ({ cpuMilli: 4000, memoryBytes: 0, count: 1, computeShare: share, gpuMemory: share === 1 ? null : { kind: 'fraction' as const, fraction: share }, models: [] })),
  [4, 3, 3],
);

function measure(nodes: number, occupancy: number, policyName: string, decisions: number) {
  const snap = cluster(nodes, occupancy, 42);
  const opts = { policy: policy(policyName), rng: createPrng(1), workload, explain: false };
  for (let k = 0; k < Math.min(200, decisions); k++) schedule(snap, req(k), opts);
  const times = new Float64Array(decisions);
  let placed = 0;
  const t0 = performance.now();
  for (let k = 0; k < decisions; k++) {
    const t = performance.now();
    const d = schedule(snap, req(k), opts);
    times[k] = performance.now() - t;
    if (d.status === 'ok') placed += 1;
  }
  const total = performance.now() - t0;
  times.sort();
  const pct = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0;
  return { nodes, occupancy, policy: policyName, decisions, perSec: (decisions / total) * 1000, p50: pct(0.5), p99: pct(0.99), placed: placed / decisions };
}

const rows = [];
const quick = process.argv.includes('--quick');
for (const nodes of [1000, 10_000]) {
  for (const occupancy of [0.5, 0.9]) {
    for (const p of ['bestfit', 'binpack', 'fragmentation']) {
      rows.push(measure(nodes, occupancy, p, nodes >= 10_000 ? (quick ? 50 : 300) : quick ? 300 : 2000));
    }
  }
}
console.log('| nodes x GPUs | occupancy | policy | decisions | decisions/s | p50 ms | p99 ms | placed | budget (1,000 x 8) |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  const budget = r.nodes === 1000 ? (r.p99 <= 2 && r.perSec >= 5000 ? 'ok' : 'MISSED') : '';
  console.log(`| ${r.nodes} x 8 | ${r.occupancy * 100}% | ${r.policy} | ${r.decisions} | ${r.perSec.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${(r.placed * 100).toFixed(0)}% | ${budget} |`);
}
