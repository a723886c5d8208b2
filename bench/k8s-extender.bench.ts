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
//   request bodies built and the replies decoded untimed (the kube-scheduler's side), injected
//   in process (light-my-request: the client's garbage is collected on the extender's time);
// - net: the same routes on a loopback port, the client another process over real HTTP with
//   keep-alive, as the kube-scheduler calls it; timed by the client's wall clock (each POST from
//   its first byte out to its reply's last byte in), or with --cpu by the server process's CPU
//   time from each request's first byte to its last. The client is bench/lib/extender-client.ts
//   in a process of its own; with two or more cores and taskset (--pin, the default; --no-pin
//   to not) the client runs on core 0 and the extender's processes on core 1, so the client's
//   work is not done on the extender's core. `--client spliced` (default) makes prioritize's
//   body by splicing the NodeNames bytes of filter's reply into filter's body (what a client
//   must forward, no JSON decoding or encoding), reads each reply to its last byte and checks
//   it cheaply (length; both replies parsed whole every --sample N-th timed pod, default 20;
//   the first --verify N warm-up pods, default 20, compared with the direct path's answer for
//   the same pod); `--client parsed` is the client before session 22 (filter's reply parsed,
//   prioritize's body stringified, prioritize's reply parsed: Node's JSON for the
//   kube-scheduler's Go). What is not measured: the kube-scheduler's own plugins and its Go
//   decoding, and making filter's body (fetched untimed: the kube-scheduler has the pod's JSON
//   and its node list before it calls).
// Reported: per round, pods/s (pods / summed filter+prioritize time) and p50/p99 per pod;
// across rounds, the median and a 95% bootstrap interval of the median.
// `--cpu` times by the process's CPU time (net: the server's, from filter's first byte in to
// prioritize's last byte out; `--phases` splits it by phase of each request, at the cost of
// two more getrusage calls a request inside the window) (process.cpuUsage: user + system, all threads, so GC
// helpers count) instead of the wall clock, for a machine shared with other work.
// Side by side with another build: --baseline <checkout or git ref> (e.g. base/session19; or
// K8S_EXTENDER_BENCH_BASELINE). Each build runs
// in a child process of its own (this file with --child <checkout>: that checkout's src/, its
// own heap, so one build's garbage is not collected on the other's time) holding its own copy of
// the same cluster; the parent asks each for a round in turn, the order reversed every other
// round. Both answer the same (extender-reference.test.ts), so both clusters change alike.
// `--cpu-prof DIR` writes each child's CPU profile there.
// Usage: node --import tsx bench/k8s-extender.bench.ts [nodes] [--rounds N] [--pods N] [--occupancy 0.5,0.9] [--names all,500] [--paths direct,http,net] [--baseline DIR|REF] [--cpu] [--cpu-prof DIR] [--client spliced|parsed] [--no-pin] [--sample N] [--verify N] [--phases] [--flags "V8 FLAGS"] [--baseline-flags "V8 FLAGS"] [--heap-survivors FILE]
// `--heap-survivors FILE`: each net round's server samples (V8's sampling heap profiler) what it
// allocates and still holds at the round's end, by function (FILE-<build>-<occupancy>.<round>,
// and the top functions to stderr): what a scavenge copies or promotes.
// or the same by env: K8S_EXTENDER_BENCH_NODES, _ROUNDS, _PODS, _OCCUPANCY, _NAMES, _PATHS, _BASELINE, _CPU=1.
import Fastify from 'fastify';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { constants as perfConstants, performance, PerformanceObserver } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import type { PodBinder } from '../src/k8s/extender/api.js';
import type { ExtenderFilterResult, HostPriority } from '../src/k8s/extender/wire.js';
import type { ClientMode, ClientRequest, ClientRound } from './lib/extender-client.js';
import type { PodDecision } from '../src/k8s/hami/decision.js';
import type * as ClusterViewModule from '../src/k8s/extender/cluster-view.js';
import type * as DecideModule from '../src/k8s/extender/decide.js';
import type * as ExtenderModule from '../src/k8s/extender/extender.js';
import type * as ServerModule from '../src/k8s/extender/server.js';
import type * as DecisionModule from '../src/k8s/hami/decision.js';
import type * as NodeGpusModule from '../src/k8s/hami/node-gpus.js';
import type * as PodRequestModule from '../src/k8s/hami/pod-request.js';
import { createPrng, type Prng } from '../src/scheduler/prng.js';
import { startHeapSampling } from './lib/heap-sample.js';

const args = process.argv.slice(2);
const ENV = 'K8S_EXTENDER_BENCH_';
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : (process.env[`${ENV}${name.slice(2).toUpperCase()}`] ?? fallback);
};
const NODES = Number(args.find((a) => /^\d+$/.test(a)) ?? process.env[`${ENV}NODES`] ?? 5000);
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
const CPU = args.includes('--cpu') || process.env[`${ENV}CPU`] === '1';
/** With --cpu, the server's CPU split by phase of each request (four getrusage calls a request instead of two a pod). */
const PHASES = CPU && args.includes('--phases');
/** Milliseconds, of wall clock or of the process's CPU time (--cpu). */
const clock = CPU
  ? (): number => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    }
  : (): number => performance.now();
const MIB = 2 ** 20;
const GPU_MIB = 81920;
const CLIENT_MODE: ClientMode = opt('--client', 'spliced') === 'parsed' ? 'parsed' : 'spliced';
if (!['spliced', 'parsed'].includes(opt('--client', 'spliced'))) throw new Error('--client: spliced or parsed');
const SAMPLE = Number(opt('--sample', '20'));
const VERIFY = Math.min(WARMUP, Number(opt('--verify', '20')));
/** Client on core 0, the extender's processes on core 1 (taskset), where there are 2 cores and taskset. */
const PIN = !args.includes('--no-pin') && availableParallelism() >= 2 && existsSync('/usr/bin/taskset');

/** The modules the bench drives, from one checkout's src/. */
async function load(root: string) {
  const m = async <T>(path: string): Promise<T> => (await import(pathToFileURL(join(root, 'src', path)).href)) as T;
  return {
    ...(await m<typeof ClusterViewModule>('k8s/extender/cluster-view.ts')),
    ...(await m<typeof DecideModule>('k8s/extender/decide.ts')),
    ...(await m<typeof ExtenderModule>('k8s/extender/extender.ts')),
    ...(await m<typeof ServerModule>('k8s/extender/server.ts')),
    ...(await m<typeof DecisionModule>('k8s/hami/decision.ts')),
    ...(await m<typeof NodeGpusModule>('k8s/hami/node-gpus.ts')),
    ...(await m<typeof PodRequestModule>('k8s/hami/pod-request.ts')),
  };
}
type Impl = Awaited<ReturnType<typeof load>>;
const here = resolve(fileURLToPath(new URL('..', import.meta.url)));
const childAt = args.indexOf('--child');
/**
 * The build to compare with: a checkout's directory, or a git ref of this repository (its src/
 * is unpacked into a temporary directory beside this checkout's node_modules).
 */
function baselineCheckout(what: string): string | undefined {
  if (what === '') return undefined;
  if (existsSync(join(what, 'src'))) return what;
  const dir = mkdtempSync(join(tmpdir(), 'gpushare-extender-baseline-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  execFileSync('sh', ['-c', 'git -C "$1" archive "$2" src | tar -x -C "$3"', 'sh', here, what, dir]);
  symlinkSync(join(here, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}
const baselineRoot = childAt >= 0 ? undefined : baselineCheckout(opt('--baseline', ''));
/** V8/Node flags for each build's extender child (`--flags`, `--baseline-flags`: e.g. "--max-semi-space-size=64"), to measure a runtime setting side by side. */
const childFlags = (name: string): string[] => opt(name, '').split(' ').filter((f) => f !== '');
const builds = [
  { name: `this build${childFlags('--flags').length > 0 ? ` ${childFlags('--flags').join(' ')}` : ''}`, root: here, flags: childFlags('--flags') },
  ...(baselineRoot ? [{ name: `baseline (${opt('--baseline', '')})${childFlags('--baseline-flags').length > 0 ? ` ${childFlags('--baseline-flags').join(' ')}` : ''}`, root: resolve(baselineRoot), flags: childFlags('--baseline-flags') }] : []),
];

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
  impl: Impl;
  ext: InstanceType<Impl['Extender']>;
  names: string[];
  alive: string[];
  rng: Prng;
  next: number;
}

function build(impl: Impl, occupancy: number, seed: number): World {
  const { Extender, encodeNodeGpus, encodeDecision } = impl;
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
  return { impl, ext, names, alive, rng, next: 0 };
}

/** Places the pod on the best-ranked node (as bind would) and lets a random bound pod go. */
function churn(w: World, pod: V1Pod, ranked: readonly HostPriority[]): void {
  const { parsePodGpuRequest, placePod, placementRequests, containerDecisions, placementsOf } = w.impl;
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
  /**
   * `net` only: per pod (medians), the bytes the two requests sent and received, the client's
   * own CPU in them (the kube-scheduler's side: writing the bodies, reading and parsing the
   * replies) and, with --cpu, the server's CPU by phase (NetPhases).
   */
  net?: { bytesIn: number; bytesOut: number; clientCpu: number; read?: number; handle?: number; write?: number; majorGcs: number; majorGcMs: number; otherGcs: number; otherGcMsPerPod: number; gcPods: number; p99NoGc: number; slowest: string; checked: number; verified: number };
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

/** The round's i-th pod and the names it is sent with. */
function nextPod(w: World, i: number, perPod: number): { pod: V1Pod; names: string[] } {
  const uid = `new-${w.next++}`;
  const pod = pendingPod(i, uid);
  const start = (w.next * perPod) % NODES;
  const names = perPod >= NODES ? w.names : [...w.names.slice(start, start + perPod), ...w.names.slice(0, Math.max(0, start + perPod - NODES))];
  return { pod, names };
}

/** CPU time of this process in ms (server side of the `net` path). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * The `net` path's server: the extender's routes on a loopback port, and two routes of the
 * bench's own, untimed: /bench/next (the next pod's filter body, as Go writes it) and
 * /bench/churn (the pod placed on the host the client chose, a bound pod leaves; answers the
 * CPU time this process spent in filter and prioritize for that pod, from their first byte
 * in to their last byte out). Answers the port; the round ends on the next line from the parent.
 */
async function serveNet(w: World, perPod: number): Promise<{ port: number; close: () => Promise<void> }> {
  const app = Fastify({ bodyLimit: 256 * MIB });
  let pending: V1Pod | null = null;
  let pendingNames: string[] = [];
  let i = 0;
  let cpu = 0;
  let since = 0;
  // Where the server's CPU goes, summed over the pod's two requests: reading and parsing the
  // body (first byte in to the handler), the handler (the decision and the reply's bytes), and
  // writing the reply (the handler's end to the last byte handed to the kernel).
  const phases = { read: 0, handle: 0, write: 0 };
  // The server's full (mark-compact) collections over the round: the old generation holds the
  // 80,000-144,000 pods' state, and a reply's bytes are external memory whose rate starts them.
  const gc = { major: 0, ms: 0, others: 0, otherMs: 0 };
  // Each pod's window (filter's first byte in to prioritize's last byte out, performance.now())
  // and the recent collections' [start, end], so /bench/churn can say how many ms of the pod's
  // window were a collection's pause (the observer reports a pause a tick after it).
  const window = { start: 0, end: 0 };
  const recentGcs: [number, number][] = [];
  app.addHook('onRequest', async (req) => {
    if (req.url.endsWith('/filter')) window.start = performance.now();
  });
  app.addHook('onResponse', async (req) => {
    if (req.url.endsWith('/prioritize')) window.end = performance.now();
  });
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      recentGcs.push([e.startTime, e.startTime + e.duration]);
      if (recentGcs.length > 64) recentGcs.shift();
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.major++;
        gc.ms += e.duration;
      } else {
        gc.others++;
        gc.otherMs += e.duration;
      }
    }
  });
  gcs.observe({ entryTypes: ['gc'] });
  let mark = 0;
  if (CPU && !PHASES) {
    // A pod's CPU from filter's first byte in to prioritize's last byte out: two getrusage
    // calls a pod (each ~20-70 us of this process's own CPU on a loaded machine, inside the
    // window it measures). Between the two requests the server waits for the client (no CPU
    // but its event loop's and what the filter left to collect).
    app.addHook('onRequest', async (req) => {
      if (req.url.endsWith('/filter')) since = cpuMs();
    });
    app.addHook('onResponse', async (req) => {
      if (req.url.endsWith('/prioritize')) cpu += cpuMs() - since;
    });
  }
  if (CPU && PHASES) {
    const extender = (req: { url: string }): boolean => !req.url.startsWith('/bench/');
    app.addHook('onRequest', async (req) => {
      if (extender(req)) since = mark = cpuMs();
    });
    app.addHook('preValidation', async (req) => {
      if (extender(req)) phases.read += -mark + (mark = cpuMs());
    });
    app.addHook('onSend', async (req) => {
      if (extender(req)) phases.handle += -mark + (mark = cpuMs());
    });
    app.addHook('onResponse', async (req) => {
      if (!extender(req)) return;
      const now = cpuMs();
      phases.write += now - mark;
      cpu += now - since;
    });
  }
  w.impl.registerExtenderRoutes(app, w.ext);
  // The body is the text JSON.stringify({ Pod, Nodes: null, NodeNames }) gives, made as bytes
  // with the list of every node's name encoded once: this untimed route's garbage (a 115 KB
  // string a pod at 5,000 names) is otherwise collected in the timed requests' scavenges, and a
  // kube-scheduler makes its bodies on its own heap.
  let allNames: Buffer | null = null;
  app.post('/bench/next', async (_req, reply) => {
    const { pod, names } = nextPod(w, i++, perPod);
    pending = pod;
    pendingNames = names;
    const list = names === w.names ? (allNames ??= Buffer.from(JSON.stringify(names), 'utf8')) : Buffer.from(JSON.stringify(names), 'utf8');
    return reply.type('application/json').send(Buffer.concat([Buffer.from(`{"Pod":${JSON.stringify(pod)},"Nodes":null,"NodeNames":`, 'utf8'), list, BODY_END]));
  });
  // The client's correctness pass: the extender's own answer for the pending pod, in process.
  app.post('/bench/direct', async () => {
    if (pending === null) throw new Error('no pod pending');
    const filter = w.ext.filter({ Pod: pending as never, NodeNames: pendingNames });
    return { filter, prioritize: w.ext.prioritize({ Pod: pending as never, NodeNames: filter.NodeNames ?? [] }) };
  });
  app.post('/bench/churn', async (req) => {
    const { host } = req.body as { host: string | null };
    if (pending !== null) churn(w, pending, host === null ? [] : [{ Host: host, Score: 10 }]);
    pending = null;
    const gcInPodMs = recentGcs.reduce((sum, [a, b]) => sum + Math.max(0, Math.min(b, window.end) - Math.max(a, window.start)), 0);
    const spent = { cpu, ...phases, majorGcs: gc.major, majorGcMs: gc.ms, otherGcs: gc.others, otherGcMs: gc.otherMs, gcInPodMs };
    cpu = phases.read = phases.handle = phases.write = 0;
    return spent;
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    close: () => {
      gcs.disconnect();
      return app.close();
    },
  };
}

const BODY_END = Buffer.from('}', 'latin1');

/** A `net` round from the client process's answer. */
function netResult(c: ClientRound): RoundResult {
  const times = CPU ? c.server.map((x) => x.cpu) : c.wall;
  const total = times.reduce((a, b) => a + b, 0);
  const med = (xs: number[]): number => pct(xs, 50);
  const majorGcs = (c.gcAt?.majorGcs ?? 0) - (c.gcFrom?.majorGcs ?? 0);
  const majorGcMs = (c.gcAt?.majorGcMs ?? 0) - (c.gcFrom?.majorGcMs ?? 0);
  const otherGcMs = (c.gcAt?.otherGcMs ?? 0) - (c.gcFrom?.otherGcMs ?? 0);
  const otherGcs = (c.gcAt?.otherGcs ?? 0) - (c.gcFrom?.otherGcs ?? 0);
  const net: RoundResult['net'] = {
    bytesIn: med(c.bytesIn),
    bytesOut: med(c.bytesOut),
    clientCpu: med(c.clientCpu),
    majorGcs,
    majorGcMs,
    otherGcs,
    otherGcMsPerPod: otherGcMs / PODS,
    gcPods: c.server.filter((x) => x.gcInPodMs > 0).length,
    p99NoGc: pct(times.filter((_, k) => (c.server[k]?.gcInPodMs ?? 0) === 0), 99),
    // The three slowest pods: their place in the round (the pod mix repeats every 10) and, with --phases, where their time went.
    slowest: times.map((t, k) => ({ t, k })).sort((a, b) => b.t - a.t).slice(0, 3).map(({ t, k }) => {
      const x = c.server[k];
      return `#${k} (mix ${(WARMUP + k) % 10}) ${t.toFixed(2)}${PHASES && x !== undefined ? ` = ${x.read.toFixed(2)} + ${x.handle.toFixed(2)} + ${x.write.toFixed(2)}` : ''}${(x?.gcInPodMs ?? 0) > 0 ? ` gc ${(x?.gcInPodMs ?? 0).toFixed(2)}` : ''}`;
    }).join(', '),
    checked: c.checked,
    verified: c.verified,
    ...(PHASES ? { read: med(c.server.map((x) => x.read)), handle: med(c.server.map((x) => x.handle)), write: med(c.server.map((x) => x.write)) } : {}),
  };
  return { podsPerS: (PODS / total) * 1000, p50: pct(times, 50), p99: pct(times, 99), feasible: c.feasible / PODS, net };
}

/** The `net` path's client process (bench/lib/extender-client.ts), pinned to core 0 with --pin. */
function startClient(): { round: (req: ClientRequest) => Promise<ClientRound>; stop: () => void } {
  const script = fileURLToPath(new URL('./lib/extender-client.ts', import.meta.url));
  const argv = [process.execPath, '--import', 'tsx', script, '--client-process'];
  const child = spawn(PIN ? 'taskset' : (argv.shift() as string), PIN ? ['-c', '0', ...argv] : argv, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    round: async (req) => {
      child.stdin.write(`${JSON.stringify(req)}\n`);
      const r = await lines.next();
      if (r.done === true) throw new Error('the bench client ended');
      return JSON.parse(r.value as string) as ClientRound;
    },
    stop: () => child.stdin.end(),
  };
}
/** Started by the first `net` round. */
const clients: { net: ReturnType<typeof startClient> | null } = { net: null };

async function round(w: World, path: 'direct' | 'http', perPod: number): Promise<RoundResult> {
  const app = Fastify({ bodyLimit: 256 * MIB });
  w.impl.registerExtenderRoutes(app, w.ext);
  await app.ready();
  const times: number[] = [];
  let feasible = 0;
  for (let i = 0; i < WARMUP + PODS; i++) {
    const { pod, names } = nextPod(w, i, perPod);
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

/**
 * Child mode: builds the cluster with `checkout`'s modules, then answers the parent's lines
 * (`round <direct|http> <names a pod>`) with a RoundResult as JSON, one line each.
 */
async function childMode(checkout: string, occupancy: number): Promise<void> {
  const t0 = performance.now();
  const world = build(await load(checkout), occupancy, 42);
  process.stdout.write(`${JSON.stringify({ built: world.alive.length, seconds: (performance.now() - t0) / 1000 })}\n`);
  const lines = createInterface({ input: process.stdin });
  let net: { port: number; close: () => Promise<void> } | null = null;
  // --heap-survivors FILE: what each net round allocated and still held at its end (written as FILE.<round>).
  const survivors = opt('--heap-survivors', '');
  let stopSampling: (() => Promise<void>) | null = null;
  let rounds = 0;
  for await (const line of lines) {
    const [verb, path, perPod] = line.split(' ');
    if (verb === 'serve') {
      // The net path: serve until the parent's next line says the round is over.
      net = await serveNet(world, Number(perPod));
      stopSampling = await startHeapSampling(survivors === '' ? undefined : `${survivors}.${++rounds}`, `[${checkout}] net round ${rounds}:`, true);
      process.stdout.write(`${JSON.stringify({ port: net.port })}\n`);
      continue;
    }
    if (verb === 'close') {
      await stopSampling?.();
      stopSampling = null;
      await net?.close();
      net = null;
      process.stdout.write('{}\n');
      continue;
    }
    const res = await round(world, path === 'http' ? 'http' : 'direct', Number(perPod));
    process.stdout.write(`${JSON.stringify(res)}\n`);
  }
}

/** A child for `root`'s build over a cluster at `occupancy`: ask() runs one round there. */
async function startChild(root: string, occupancy: number, flags: string[]): Promise<{ ask: (path: string, perPod: number) => Promise<RoundResult>; built: { built: number; seconds: number }; stop: () => void }> {
  const prof = opt('--cpu-prof', '');
  const argv = [process.execPath, ...flags, ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []), '--import', 'tsx', fileURLToPath(import.meta.url), '--child', root, '--occupancy', String(occupancy), String(NODES), '--pods', String(PODS), ...(CPU ? ['--cpu'] : []), ...(PHASES ? ['--phases'] : []), ...(opt('--heap-survivors', '') !== '' ? ['--heap-survivors', `${opt('--heap-survivors', '')}-${root === here ? 'this' : 'base'}-${occupancy}`] : [])];
  const child = spawn(PIN ? 'taskset' : (argv.shift() as string), PIN ? ['-c', '1', ...argv] : argv, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<unknown> => {
    for (;;) {
      const r = await lines.next();
      if (r.done === true) throw new Error(`the bench child for ${root} ended`);
      // A line that is not the child's JSON is V8's (--flags "--trace-gc" and the like): to stderr, stamped.
      if ((r.value as string).startsWith('{')) return JSON.parse(r.value as string);
      process.stderr.write(`[${root === here ? 'this build' : 'baseline'} ${performance.now().toFixed(0)}] ${r.value as string}\n`);
    }
  };
  const built = (await next()) as { built: number; seconds: number };
  return {
    built,
    ask: async (path, perPod) => {
      if (path === 'net') {
        child.stdin.write(`serve net ${perPod}\n`);
        const { port } = (await next()) as { port: number };
        clients.net ??= startClient();
        const res = netResult(await clients.net.round({ port, pods: PODS, warmup: WARMUP, mode: CLIENT_MODE, sample: SAMPLE, verify: VERIFY }));
        child.stdin.write('close\n');
        await next();
        return res;
      }
      child.stdin.write(`round ${path} ${perPod}\n`);
      return (await next()) as RoundResult;
    },
    stop: () => child.stdin.end(),
  };
}

if (childAt >= 0) {
  await childMode(args[childAt + 1] ?? here, OCCUPANCIES[0] ?? 0.5);
} else {
  console.log(`extender filter + prioritize: ${NODES} nodes x ${GPUS} GPUs, ${PODS} pods a round after ${WARMUP} warm-up, ${ROUNDS} interleaved rounds, ${CPU ? 'CPU time' : 'wall clock'}; net client ${CLIENT_MODE}${PIN ? ', pinned to core 0, the extender to core 1' : ', not pinned'}; Node ${process.version}; builds: ${builds.map((b) => b.name).join(', ')}`);
  const rows: string[] = [];
  const netRows: string[] = [];
  const paths = (['direct', 'http', 'net'] as const).filter((p) => opt('--paths', 'direct,http,net').split(',').includes(p));
  for (const occupancy of OCCUPANCIES) {
    const children = [];
    for (const b of builds) {
      const c = await startChild(b.root, occupancy, b.flags);
      console.log(`occupancy ${occupancy}, ${b.name}: ${c.built.built} pods bound, built in ${c.built.seconds.toFixed(1)} s`);
      children.push(c);
    }
    for (const mode of NAME_MODES) {
      const perPod = mode === 'all' ? NODES : Number(mode);
      const runs = children.flatMap((child, b) => paths.map((path) => ({ child, build: builds[b]?.name ?? '', path, results: [] as RoundResult[] })));
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? runs : [...runs].reverse();
        for (const run of order) {
          const res = await run.child.ask(run.path, perPod);
          run.results.push(res);
          console.log(`  names ${mode} round ${r + 1} ${run.build} ${run.path}: ${res.podsPerS.toFixed(0)} pods/s, p50 ${res.p50.toFixed(2)} ms, p99 ${res.p99.toFixed(2)} ms, ${res.feasible.toFixed(0)} feasible nodes a pod${netLine(res)}`);
        }
      }
      for (const { build: name, path, results: xs } of runs) {
        const p99 = pct(xs.map((x) => x.p99), 50);
        const rate = pct(xs.map((x) => x.podsPerS), 50);
        const ok = p99 <= 5 && rate >= 500 ? 'ok' : 'MISSED';
        const nets = xs.flatMap((x) => (x.net ? [x.net] : []));
        if (nets.length > 0) {
          const m = (f: (n: NonNullable<RoundResult['net']>) => number | undefined, digits: number): string => {
            const v = nets.map(f).filter((x): x is number => x !== undefined);
            return v.length === 0 ? '-' : pct(v, 50).toFixed(digits);
          };
          netRows.push(`| ${name} | ${Math.round(occupancy * 100)}% | ${mode === 'all' ? NODES : mode} | ${m((n) => n.bytesOut / 1024, 0)} | ${m((n) => n.bytesIn / 1024, 0)} | ${m((n) => n.clientCpu, 2)} | ${m((n) => n.read, 2)} | ${m((n) => n.handle, 2)} | ${m((n) => n.write, 2)} | ${m((n) => n.gcPods, 0)} | ${m((n) => n.p99NoGc, 2)} |`);
        }
        rows.push(`| ${name} | ${Math.round(occupancy * 100)}% | ${mode === 'all' ? NODES : mode} | ${path} | ${medianCi(xs.map((x) => x.podsPerS), 0)} | ${medianCi(xs.map((x) => x.p50), 2)} | ${medianCi(xs.map((x) => x.p99), 2)} | ${pct(xs.map((x) => x.feasible), 50).toFixed(0)} | ${ok} |`);
      }
    }
    for (const c of children) c.stop();
  }
  clients.net?.stop();
  console.log(`\n${NODES} nodes x ${GPUS} GPUs; medians of ${ROUNDS} rounds (95% bootstrap interval)`);
  console.log('| build | occupancy | names a pod | path | pods/s | p50 ms | p99 ms | feasible nodes a pod | budget (p99 <= 5 ms, >= 500/s) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);
  if (netRows.length > 0) {
    console.log(`\nnet, per pod (filter + prioritize; medians of the rounds' medians): KiB sent and received by the client, the client's own CPU ms (${CLIENT_MODE === 'spliced' ? 'splicing bodies, scanning replies' : 'writing bodies, parsing replies'})${PHASES ? ", and the server's CPU ms by phase (read: first byte in to the handler; handle: the decision and the reply's bytes; write: to the last byte handed to the kernel)" : ''}; pods whose window held a collection's pause (server side), and the p99 of the pods whose window held none`);
    console.log('| build | occupancy | names a pod | KiB out | KiB in | client CPU ms | server read ms | server handle ms | server write ms | pods with a GC pause inside | p99 ms of the others |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of netRows) console.log(r);
  }
}

function netLine(res: RoundResult): string {
  const n = res.net;
  if (n === undefined) return '';
  const server = n.read === undefined ? '' : `, server read ${n.read.toFixed(2)} / handle ${(n.handle ?? NaN).toFixed(2)} / write ${(n.write ?? NaN).toFixed(2)} ms`;
  return `; ${(n.bytesOut / 1024).toFixed(0)} KiB out, ${(n.bytesIn / 1024).toFixed(0)} KiB in, client CPU ${n.clientCpu.toFixed(2)} ms${server}; ${n.verified} pods verified against direct, ${n.checked} parsed and checked; server full GCs ${n.majorGcs} (${n.majorGcMs.toFixed(0)} ms), other GC pauses ${n.otherGcs} (${n.otherGcMsPerPod.toFixed(2)} ms a pod); ${n.gcPods} pods with a pause inside, p99 of the others ${n.p99NoGc.toFixed(2)} ms; slowest ms${PHASES ? ' (read + handle + write)' : ''}: ${n.slowest}`;
}
