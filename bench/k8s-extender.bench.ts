// The scheduler extender's filter + prioritize at cluster scale: 5,000 nodes x 8 GPUs (H100,
// 80 GiB) already holding pods, one pod at a time, as the kube-scheduler asks (nodeCacheCapable:
// every node's name in, filter, then prioritize over the nodes that passed).
// Budget (DESIGN.md): p99 <= 5 ms per pod for filter + prioritize, >= 500 pods/s.
// Method: the cluster is filled so each GPU holds k HAMi pods of a quarter GPU (20 GiB, 25
// cores), k ~ Binomial(4, occupancy), all bound with their decision annotation and fed to the
// extender's view as the watch would. Then a fixed mix of pods (40% a quarter GPU, 30% half,
// 20% a whole GPU, 10% two whole GPUs) is filtered and prioritized; after each, the pod is
// placed where prioritize ranked best (reserved in the view, as bind does) and a random bound
// pod leaves, so two nodes change per pod and the per-node memo sees realistic invalidation
// (placement and departure untimed). Two paths, in interleaved rounds:
// - direct: Extender.filter + Extender.prioritize (decode of the pod, the engine, the answer);
// - http: the same through the fastify routes (JSON parse, zod validation, JSON reply), the
//   request bodies built and the replies decoded untimed (the kube-scheduler's side).
// Reported: per round, pods/s (pods / summed filter+prioritize time) and p50/p99 per pod;
// across rounds, the median and a 95% bootstrap interval of the median.
// `--cpu` times by the process's CPU time (process.cpuUsage: user + system, all threads, so GC
// helpers count) instead of the wall clock, for a machine shared with other work.
// Usage: node --import tsx bench/k8s-extender.bench.ts [nodes] [--rounds N] [--pods N] [--occupancy 0.5,0.9] [--names all,500] [--paths direct,http] [--cpu]
import Fastify from 'fastify';
import { performance } from 'node:perf_hooks';
import type { V1Pod } from '@kubernetes/client-node';
import type { PodBinder } from '../src/k8s/extender/api.js';
import { placementsOf } from '../src/k8s/extender/cluster-view.js';
import { containerDecisions, placePod, placementRequests } from '../src/k8s/extender/decide.js';
import { Extender } from '../src/k8s/extender/extender.js';
import { registerExtenderRoutes } from '../src/k8s/extender/server.js';
import type { ExtenderFilterResult, HostPriority } from '../src/k8s/extender/wire.js';
import { encodeDecision, type PodDecision } from '../src/k8s/hami/decision.js';
import { encodeNodeGpus } from '../src/k8s/hami/node-gpus.js';
import { parsePodGpuRequest } from '../src/k8s/hami/pod-request.js';
import { createPrng, type Prng } from '../src/scheduler/prng.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const NODES = Number(args.find((a) => /^\d+$/.test(a)) ?? 5000);
const ROUNDS = Number(opt('--rounds', '5'));
const PODS = Number(opt('--pods', '300'));
const WARMUP = 100;
const OCCUPANCIES = opt('--occupancy', '0.5,0.9').split(',').map(Number);
/**
 * Names sent per pod: `all`, or N. The kube-scheduler sends extenders only the feasible nodes
 * its own filters found, and stops looking at percentageOfNodesToScore (adaptive default:
 * 50 - nodes/125 percent, 10% = 500 names at 5,000 nodes), starting each pod where the last
 * stopped: N names from a window that moves round the node list.
 */
const NAME_MODES = opt('--names', 'all,500').split(',');
const GPUS = 8;
const CPU = args.includes('--cpu');
/** Milliseconds, of wall clock or of the process's CPU time (--cpu). */
const clock = CPU
  ? (): number => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    }
  : (): number => performance.now();
const MIB = 2 ** 20;
const GPU_MIB = 81920;

/** Binding is never exercised here: the bench reserves in the view directly (untimed). */
const noApi: PodBinder = {
  getPod: () => Promise.reject(new Error('unused')),
  annotatePod: () => Promise.reject(new Error('unused')),
  bindPod: () => Promise.reject(new Error('unused')),
};

function pendingPod(k: number, uid: string): V1Pod {
  const r = k % 10;
  const limits: Record<string, string> =
    r < 4 ? { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '20480', 'nvidia.com/gpucores': '25' }
    : r < 7 ? { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '40960', 'nvidia.com/gpucores': '50' }
    : r < 9 ? { 'nvidia.com/gpu': '1' }
    : { 'nvidia.com/gpu': '2' };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `pod-${uid}`, namespace: 'bench', uid, resourceVersion: '1', annotations: {} },
    spec: { containers: [{ name: 'main', image: 'cuda', resources: { limits, requests: limits } }], schedulerName: 'gpushare-scheduler', priority: 0 },
    status: { phase: 'Pending' },
  };
}

interface World {
  ext: Extender;
  names: string[];
  alive: string[];
  rng: Prng;
  next: number;
}

function build(occupancy: number, seed: number): World {
  const ext = new Extender(noApi, { now: () => 0 });
  const rng = createPrng(seed);
  const names: string[] = [];
  const alive: string[] = [];
  for (let n = 0; n < NODES; n++) {
    const name = `node-${n}`;
    names.push(name);
    const gpus = Array.from({ length: GPUS }, (_, i) => ({ index: i, uuid: `GPU-${n}-${i}`, model: 'H100-80GB', name: 'NVIDIA H100 80GB HBM3', memoryMiB: GPU_MIB, health: 'ok' as const, numaNode: i < 4 ? 0 : 1 }));
    ext.view.observeNode({ metadata: { name, annotations: { 'gpushare.io/node-gpus': encodeNodeGpus(gpus) } } });
    for (let i = 0; i < GPUS; i++) {
      let quarters = 0;
      for (let q = 0; q < 4; q++) if (rng.next() < occupancy) quarters++;
      for (let q = 0; q < quarters; q++) {
        const uid = `bound-${n}-${i}-${q}`;
        const decision: PodDecision = {
          v: 1, podUid: uid, node: name, decidedAtMs: 0,
          containers: [{ name: 'main', index: 0, taskPriority: 1, exclusive: false, gpus: [{ uuid: `GPU-${n}-${i}`, index: i, memoryBytes: 20480 * MIB, coresPercent: 25, computeMilli: 250 }] }],
        };
        ext.view.observePod({ metadata: { uid, name: uid, namespace: 'bench', annotations: { 'gpushare.io/decision': encodeDecision(decision) } }, spec: { nodeName: name, containers: [] }, status: { phase: 'Running' } });
        alive.push(uid);
      }
    }
  }
  return { ext, names, alive, rng, next: 0 };
}

/** Places the pod on the best-ranked node (as bind would) and lets a random bound pod go. */
function churn(w: World, pod: V1Pod, ranked: readonly HostPriority[]): void {
  const parsed = parsePodGpuRequest(pod);
  if (parsed.ok && parsed.value && ranked.length > 0) {
    const best = ranked.reduce((a, b) => (b.Score > a.Score ? b : a));
    const snapshot = w.ext.view.snapshot();
    const placed = placePod(snapshot, best.Host, parsed.value, placementRequests(parsed.value, false));
    if (placed.ok) {
      const decision: PodDecision = { v: 1, podUid: parsed.value.uid, node: best.Host, decidedAtMs: 0, containers: containerDecisions(snapshot, parsed.value, placed.placements) };
      w.ext.view.reserve({ uid: parsed.value.uid, namespace: 'bench', name: parsed.value.name, decision, placements: placementsOf(decision, 0, false) });
      w.alive.push(parsed.value.uid);
    }
  }
  const k = Math.floor(w.rng.next() * w.alive.length);
  const gone = w.alive[k];
  if (gone !== undefined) {
    w.alive[k] = w.alive[w.alive.length - 1] as string;
    w.alive.pop();
    w.ext.view.observePod({ metadata: { uid: gone } }, true);
  }
}

interface RoundResult {
  podsPerS: number;
  p50: number;
  p99: number;
  feasible: number;
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

/** Median and a 95% bootstrap interval of the median (fixed seed: the same data give the same interval). */
function medianCi(xs: readonly number[], digits: number): string {
  const med = pct(xs, 50);
  if (xs.length < 3) return med.toFixed(digits);
  const rand = createPrng(0x2545f491);
  const meds: number[] = [];
  for (let b = 0; b < 2000; b++) meds.push(pct(Array.from(xs, () => xs[Math.floor(rand.next() * xs.length)] ?? NaN), 50));
  return `${med.toFixed(digits)} (${pct(meds, 2.5).toFixed(digits)}-${pct(meds, 97.5).toFixed(digits)})`;
}

async function round(w: World, path: 'direct' | 'http', perPod: number): Promise<RoundResult> {
  const app = Fastify({ bodyLimit: 256 * MIB });
  registerExtenderRoutes(app, w.ext);
  await app.ready();
  const times: number[] = [];
  let feasible = 0;
  for (let i = 0; i < WARMUP + PODS; i++) {
    const uid = `new-${w.next++}`;
    const pod = pendingPod(i, uid);
    const start = (w.next * perPod) % NODES;
    const names = perPod >= NODES ? w.names : [...w.names.slice(start, start + perPod), ...w.names.slice(0, Math.max(0, start + perPod - NODES))];
    let t = 0;
    let ranked: HostPriority[];
    if (path === 'direct') {
      const t0 = clock();
      const f = w.ext.filter({ Pod: pod as never, NodeNames: names });
      ranked = w.ext.prioritize({ Pod: pod as never, NodeNames: f.NodeNames ?? [] });
      t = clock() - t0;
      if (i >= WARMUP) feasible += f.NodeNames?.length ?? 0;
    } else {
      const filterBody = JSON.stringify({ Pod: pod, Nodes: null, NodeNames: names });
      const t0 = clock();
      const fr = await app.inject({ method: 'POST', url: '/gpushare-scheduler/filter', headers: { 'content-type': 'application/json' }, payload: filterBody });
      t = clock() - t0;
      const f = JSON.parse(fr.body) as ExtenderFilterResult;
      const prioritizeBody = JSON.stringify({ Pod: pod, Nodes: null, NodeNames: f.NodeNames });
      const t1 = clock();
      const pr = await app.inject({ method: 'POST', url: '/gpushare-scheduler/prioritize', headers: { 'content-type': 'application/json' }, payload: prioritizeBody });
      t += clock() - t1;
      ranked = JSON.parse(pr.body) as HostPriority[];
      if (i >= WARMUP) feasible += f.NodeNames?.length ?? 0;
    }
    if (i >= WARMUP) times.push(t);
    churn(w, pod, ranked);
  }
  await app.close();
  const total = times.reduce((a, b) => a + b, 0);
  return { podsPerS: (PODS / total) * 1000, p50: pct(times, 50), p99: pct(times, 99), feasible: feasible / PODS };
}

console.log(`extender filter + prioritize: ${NODES} nodes x ${GPUS} GPUs, ${PODS} pods a round after ${WARMUP} warm-up, ${ROUNDS} interleaved rounds, ${CPU ? 'CPU time' : 'wall clock'}; Node ${process.version}`);
const rows: string[] = [];
for (const occupancy of OCCUPANCIES) {
  const t0 = performance.now();
  const world = build(occupancy, 42);
  console.log(`occupancy ${occupancy}: ${world.alive.length} pods bound, built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const paths = (['direct', 'http'] as const).filter((p) => opt('--paths', 'direct,http').split(',').includes(p));
  for (const mode of NAME_MODES) {
    const perPod = mode === 'all' ? NODES : Number(mode);
    const results: Record<(typeof paths)[number], RoundResult[]> = { direct: [], http: [] };
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? paths : [...paths].reverse();
      for (const p of order) {
        const res = await round(world, p, perPod);
        results[p].push(res);
        console.log(`  names ${mode} round ${r + 1} ${p}: ${res.podsPerS.toFixed(0)} pods/s, p50 ${res.p50.toFixed(2)} ms, p99 ${res.p99.toFixed(2)} ms, ${res.feasible.toFixed(0)} feasible nodes a pod`);
      }
    }
    for (const p of paths) {
      const xs = results[p];
      const p99 = pct(xs.map((x) => x.p99), 50);
      const rate = pct(xs.map((x) => x.podsPerS), 50);
      const ok = p99 <= 5 && rate >= 500 ? 'ok' : 'MISSED';
      rows.push(`| ${NODES} x ${GPUS} | ${Math.round(occupancy * 100)}% | ${mode === 'all' ? NODES : mode} | ${p} | ${medianCi(xs.map((x) => x.podsPerS), 0)} | ${medianCi(xs.map((x) => x.p50), 2)} | ${medianCi(xs.map((x) => x.p99), 2)} | ${pct(xs.map((x) => x.feasible), 50).toFixed(0)} | ${ok} |`);
    }
  }
}
console.log('\n| nodes x GPUs | occupancy | names a pod | path | pods/s | p50 ms | p99 ms | feasible nodes a pod | budget (p99 <= 5 ms, >= 500/s) |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
