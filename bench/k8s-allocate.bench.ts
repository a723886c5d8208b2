// The device plugin's Allocate over a real Unix socket (issue 18 budget: p99 <= 5 ms on this machine).
//
// The plugin runs in a child process, as it runs beside the kubelet with its pod cache already
// current, and the fake API server it watches (test/k8s/fake-apiserver.ts) in another (since
// session 23: in the plugin's process, the fake's handling of each pod's patch and the watch
// event it sends ran on the plugin's event loop, in front of the kubelet's next call; a real API
// server is another machine). This process is the kubelet: it serves the Registration socket, and calls the plugin one call at a time, as the
// kubelet's device manager does. A round fills the node as the kubelet would: 8 GPUs x 10
// replicas, so 80 one-GPU pods bound with their extender decisions; per pod the kubelet asks
// GetPreferredAllocation, then Allocate (what is timed: finding the pod in the cache, the
// decision, the ledger written in place, the answer; since session 26 the container's directory
// and the answer are made when the watch sees the pod, during the fill), then
// GetDevicePluginOptions as the floor (a gRPC round trip that does nothing, right after the
// Allocate; until session 25 while the plugin sent the pod's patch, which now waits for a 5 ms
// pause in the kubelet's calls: grpc/quiet-queue.ts), then after a 10 ms pause (in which
// the patch and its watch event run) the same call again as the idle floor, interleaved so all
// four see the same machine. The pauses cost a call something of their own on this VM: a call
// after 10 ms idle took 1.5 ms at p50 against 0.8 back to back (grpc-floor.bench.ts --gap-ms 0,10). Then the pods are deleted and the plugin forgets them. Per round,
// each call's p50 and slowest call (what this bench called the round's p99 before session 24:
// with 80 calls a round the two are the same sample); across rounds, the median (and the range)
// of the rounds' values, and the p99 of all the rounds' calls together (the budget's number).
// The pods' gpushare.io/allocated patches run in the background during the round, as they do in
// service. Since session 25 it also gives each plugin process's CPU time per pod (/proc), which
// compares builds where a shared machine's wall clock cannot. Since session 24 it also says how many Allocates overlapped a garbage collection in
// the plugin or in this process, and the p99 of the others (where the tail comes from).
// K8S_ALLOCATE_NODE_ARGS: node/V8 flags for the plugin's process (e.g. "--v8-pool-size=1").
// K8S_ALLOCATE_LOG=pipe (since session 25): the plugin logs as in the DaemonSet (JSON lines on
// stderr) into a pipe this process drains, instead of not logging.
// K8S_ALLOCATE_BENCH_BASELINE=/other/checkout (since session 25): that checkout's plugin (its own
// copy of this file, --plugin) runs too, with a fake API server and a kubelet socket of its own,
// and every pod's four calls go to both in turns (the order reversed every other pod), so both
// see the same machine.
// Env: K8S_ALLOCATE_ROUNDS (30, so 2,400 Allocates); K8S_ALLOCATE_API=inprocess puts the
// fake API server back in the plugin's process (the layout before session 23).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { startHeapSampling } from './lib/heap-sample.js';
import { processCpuMs } from './lib/proc-cpu.js';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { apiClients } from '../src/k8s/api/client.js';
import { StaticInventory } from '../src/k8s/dra/kubelet-inventory.js';
import { startDevicePlugin } from '../src/k8s/deviceplugin/plugin.js';
import { FakeKubelet, podJson } from '../test/k8s/device-plugin-fixtures.js';
import { gpu } from '../test/k8s/dra-kubelet-fixtures.js';
import { startFakeApiServer, until } from '../test/k8s/fake-apiserver.js';

const ROUNDS = Number(process.env['K8S_ALLOCATE_ROUNDS'] ?? 30);
const GPUS = Array.from({ length: 8 }, (_, i) => gpu(i));
const SPLIT = 10;
const PODS = GPUS.length * SPLIT;
const BUDGET_MS = 5;

const API_INPROCESS = process.env['K8S_ALLOCATE_API'] === 'inprocess';

/**
 * Answers the control lines on stdin (`<verb> <round>`), each with `done <verb>` on stdout once
 * its work is done; `ready` first.
 */
function serveLines(handle: (verb: string, round: number) => Promise<string | void>, onFail: (e: Error) => string): void {
  let input = '';
  process.stdin.on('data', (b: Buffer) => {
    input += b.toString();
    for (let nl = input.indexOf('\n'); nl >= 0; nl = input.indexOf('\n')) {
      const [verb, arg] = input.slice(0, nl).split(' ');
      input = input.slice(nl + 1);
      void handle(verb ?? '', Number(arg)).then((extra) => process.stdout.write(`done ${verb}${typeof extra === 'string' ? ` ${extra}` : ''}\n`)).catch((e: unknown) => {
        process.stderr.write(`${onFail(e as Error)}\n`);
        process.exit(1);
      });
    }
  });
}

const podName = (round: number, i: number): string => `r${round}-p${i}`;

/**
 * The fake API server's process: prints its URL, then `fill <round>` seeds a round's pods,
 * `remove <round>` deletes them, `watching` waits for the plugin's pod watch.
 */
async function apiMode(): Promise<void> {
  // Not strict: its typed check of every write is the fake's own cost, not an API server's
  // (tests check the plugin's writes strictly).
  const api = await startFakeApiServer({ strict: false });
  serveLines(async (verb, round) => {
    if (verb === 'fill') {
      for (let i = 0; i < PODS; i++) {
        api.seed('pods', podJson({ name: podName(round, i), uid: `u-${round}-${i}`, decidedAtMs: round * 1000 + i, containers: [{ gpus: 1, memoryMiB: 1024, cores: 10, decided: [GPUS[i % GPUS.length]!.uuid] }] }));
      }
      await until(() => api.openWatches('pods') > 0 && api.requests.length > 0, 10_000, 'the watch');
    } else if (verb === 'remove') {
      for (let i = 0; i < PODS; i++) api.remove('pods', podName(round, i), 'ml');
    } else if (verb === 'stop') {
      await api.close();
      process.exit(0);
    }
  }, (e) => `the API server's side failed: ${e.message}`);
  process.stdout.write(`${api.url}\n`);
}

/**
 * The plugin's process: `fill <round>` waits for the pods to reach its cache (and with the API
 * server in this process, seeds them first), `clear <round>` waits for its patches, deletes the
 * pods (in-process API) and waits until it forgot them.
 */
async function pluginMode(root: string, apiUrl: string | null): Promise<void> {
  const gcs = recordGcs();
  const heapSample = await startHeapSampling(process.env['K8S_ALLOCATE_HEAP_SAMPLE'], 'plugin'); // K8S_ALLOCATE_HEAP_SAMPLE=FILE: the plugin's allocations, garbage included
  writeFileSync(join(root, 'libgpushare.so'), 'bench');
  const api = apiUrl === null ? await startFakeApiServer({ strict: false }) : null;
  const kubeConfig = api?.kubeConfig() ?? new KubeConfig();
  if (apiUrl !== null) {
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'fake', server: apiUrl, skipTLSVerify: true }], users: [{ name: 'fake', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }], currentContext: 'fake',
    });
  }
  const plugin = await startDevicePlugin({
    nodeName: 'node-a', gpus: GPUS, health: new StaticInventory(GPUS), api: apiClients(kubeConfig), library: join(root, 'libgpushare.so'),
    deviceDir: join(root, 'device-plugins'), stateDir: join(root, 'state'), split: SPLIT, deviceNode: (g) => `/dev/nvidia${g.index}`,
    // K8S_ALLOCATE_LOG=pipe: the plugin's own log (JSON lines on stderr, as in the DaemonSet) into a pipe this process drains.
    ...(process.env['K8S_ALLOCATE_LOG'] === 'pipe' ? {} : { log: { info: () => undefined, error: (m: string, f?: Record<string, unknown>) => process.stderr.write(`${m} ${JSON.stringify(f)}\n`) } }),
  });
  serveLines(async (verb, round) => {
    if (verb === 'fill') {
      if (api !== null) {
        for (let i = 0; i < PODS; i++) {
          api.seed('pods', podJson({ name: podName(round, i), uid: `u-${round}-${i}`, decidedAtMs: round * 1000 + i, containers: [{ gpus: 1, memoryMiB: 1024, cores: 10, decided: [GPUS[i % GPUS.length]!.uuid] }] }));
        }
        await until(() => api.openWatches('pods') > 0 && api.requests.length > 0, 10_000, 'the watch');
      }
      // The kubelet sees a pod when the plugin's watch does (or later): wait for the cache.
      await new Promise((resolve) => setTimeout(resolve, 200));
    } else if (verb === 'settle') {
      await plugin.settled();
    } else if (verb === 'clear') {
      await plugin.settled();
      if (api !== null) for (let i = 0; i < PODS; i++) api.remove('pods', podName(round, i), 'ml');
    } else if (verb === 'gcs') {
      return JSON.stringify(gcs.splice(0));
    } else if (verb === 'forgotten') {
      await until(() => plugin.served().length === 0, 10_000, 'the plugin to forget the pods');
    } else if (verb === 'stop') {
      await heapSample?.();
      await plugin.stop();
      await api?.close();
      process.exit(0);
    }
  }, (e) => `the plugin's side failed: ${e.message}; served ${plugin.served().length}`);
  process.stdout.write('ready\n');
}

/** [start, end] of each garbage collection in this process from now on, in ms of the epoch clock shared by the processes. */
function recordGcs(): [number, number][] {
  const gcs: [number, number][] = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([performance.timeOrigin + e.startTime, performance.timeOrigin + e.startTime + e.duration]);
  }).observe({ entryTypes: ['gc'] });
  return gcs;
}


function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/** Sends a line to a child process and waits for its next line (`done <verb>`, or its first line). */
function control(child: ChildProcess): (line: string | null) => Promise<string> {
  let text = '';
  const waiters: ((line: string) => void)[] = [];
  child.stdout?.on('data', (b: Buffer) => {
    text += b.toString();
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
      const line = text.slice(0, nl);
      text = text.slice(nl + 1);
      waiters.shift()?.(line);
    }
  });
  return (line) => new Promise<string>((resolve) => {
    waiters.push(resolve);
    if (line !== null) child.stdin?.write(`${line}\n`);
  });
}

/** One plugin under test: its checkout's plugin process, its fake API server, and the kubelet (this process) it registered with. */
interface Target {
  readonly name: string;
  readonly root: string;
  readonly kubelet: FakeKubelet;
  readonly child: ChildProcess;
  readonly send: (line: string | null) => Promise<string>;
  readonly apiChild: ChildProcess | null;
  readonly toApi: ((line: string | null) => Promise<string>) | null;
}

type Op = 'Allocate' | 'GetPreferredAllocation' | 'floor: GetDevicePluginOptions' | 'idle floor: the same after 10 ms';
const OPS: readonly Op[] = ['Allocate', 'GetPreferredAllocation', 'floor: GetDevicePluginOptions', 'idle floor: the same after 10 ms'];

/** What a target's calls gave: per round and pooled, and which Allocates met a collection. */
interface Tally {
  readonly perRound: Record<Op, { p50: number[]; p99: number[] }>;
  readonly pooled: Record<Op, number[]>;
  readonly gcHit: { plugin: number; client: number; calls: number; pluginGcs: number; pluginGcMs: number };
  readonly noGc: number[];
  /** The plugin process's CPU ms per pod, per round (its four calls, the pod's patch and the watch event it brings back). */
  readonly cpuPerPod: number[];
}

async function main(): Promise<void> {
  const here = fileURLToPath(new URL('..', import.meta.url));
  const baseline = process.env['K8S_ALLOCATE_BENCH_BASELINE'];
  const spawnChild = (script: string, cwd: string, argv: string[], what: string): ChildProcess => {
    const flags = argv[0] === '--plugin' ? (process.env['K8S_ALLOCATE_NODE_ARGS'] ?? '').split(' ').filter((f) => f !== '') : [];
    // K8S_ALLOCATE_LOG=pipe: the plugin's stderr is a pipe, as a container's is, drained here (its tail kept for a failure).
    const logPipe = argv[0] === '--plugin' && process.env['K8S_ALLOCATE_LOG'] === 'pipe';
    const c = spawn(process.execPath, [...flags, '--import', 'tsx', script, ...argv], { cwd, stdio: ['pipe', 'pipe', logPipe ? 'pipe' : 'inherit'] });
    let tail = '';
    c.stderr?.on('data', (b: Buffer) => {
      tail = (tail + b.toString()).slice(-4000);
    });
    c.once('exit', (code) => {
      if (code !== 0 && code !== null) {
        console.error(`the ${what}'s process exited ${code}${tail === '' ? '' : `; its stderr ended:\n${tail}`}`);
        process.exit(1);
      }
    });
    return c;
  };
  /** A plugin of the checkout at `checkout` (its own bench file's --plugin mode) with a fake API server and a kubelet of its own. */
  const startTarget = async (checkout: string, name: string): Promise<Target> => {
    const root = mkdtempSync(join(tmpdir(), 'gs-allocate-bench-'));
    const dir = join(root, 'device-plugins');
    mkdirSync(dir);
    const kubelet = new FakeKubelet(dir);
    await kubelet.start();
    // The fake API server is this checkout's for both (it is the bench's, not the plugin's).
    const apiChild = API_INPROCESS ? null : spawnChild(fileURLToPath(import.meta.url), here, ['--api'], `${name}'s API server`);
    const toApi = apiChild === null ? null : control(apiChild);
    const apiUrl = toApi === null ? null : await toApi(null);
    const child = spawnChild(join(checkout, 'bench', 'k8s-allocate.bench.ts'), checkout, ['--plugin', root, ...(apiUrl === null ? [] : ['--api-url', apiUrl])], `${name}'s plugin`);
    const send = control(child);
    await send(null); // ready
    await until(() => kubelet.registrations.length === 1 && kubelet.latest() !== undefined, 10_000, `${name}'s plugin to register`);
    return { name, root, kubelet, child, send, apiChild, toApi };
  };
  const targets = [await startTarget(here, 'this build')];
  if (baseline) targets.push(await startTarget(resolve(baseline), `baseline (${baseline})`));

  const tallies = targets.map((): Tally => ({
    perRound: Object.fromEntries(OPS.map((op) => [op, { p50: [] as number[], p99: [] as number[] }])) as Tally['perRound'],
    // Every timed call of every round: a round has only 80 calls of each kind, so a round's "p99"
    // is its slowest call (index floor(0.99 * 80) = 79); the p99 over all rounds' calls is the
    // quantile itself (7 rounds: the 6th slowest of 560).
    pooled: Object.fromEntries(OPS.map((op) => [op, [] as number[]])) as Tally['pooled'],
    gcHit: { plugin: 0, client: 0, calls: 0, pluginGcs: 0, pluginGcMs: 0 },
    noGc: [],
    cpuPerPod: [],
  }));
  // Where Allocate's tail comes from: each Allocate's [start, end] on the epoch clock, against
  // the plugin's collections and this process's (the kubelet's stand-in: the kubelet is Go, so
  // those are the bench's cost). Allocates that overlapped one, and the p99 of the others.
  const clientGcs = recordGcs();
  const allIds = GPUS.flatMap((g) => Array.from({ length: SPLIT }, (_, r) => `${g.uuid}::${r}`));
  const time = async <T>(fn: () => Promise<T>): Promise<[number, T]> => {
    const t0 = performance.now();
    const r = await fn();
    return [performance.now() - t0, r];
  };
  for (let round = -1; round < ROUNDS; round++) { // round -1 warms up
    for (const t of targets) {
      await t.toApi?.(`fill ${round + 1}`);
      await t.send(`fill ${round + 1}`);
      await t.send('gcs 0'); // forget the fill's collections
    }
    clientGcs.splice(0);
    const samples = targets.map(() => Object.fromEntries(OPS.map((op) => [op, [] as number[]])) as Record<Op, number[]>);
    const spans = targets.map(() => [] as [number, number][]);
    const used = targets.map(() => new Set<string>());
    const cpuAtStart = targets.map((t) => processCpuMs(t.child.pid));
    for (let i = 0; i < PODS; i++) {
      // Both plugins get every pod, in turns (the order reversed every other pod), so both see the same machine.
      const order = i % 2 === 0 ? targets.map((_, k) => k) : targets.map((_, k) => k).reverse();
      for (const k of order) {
        const { kubelet } = targets[k]!;
        const [tp, preferred] = await time(() => kubelet.preferred(allIds.filter((id) => !used[k]!.has(id)), 1));
        const at = performance.timeOrigin + performance.now();
        const [ta, answer] = await time(() => kubelet.allocate(preferred));
        spans[k]!.push([at, at + ta]);
        if (answer[0]?.envs['GPUSHARE_POD'] !== `ml/r${round + 1}-p${i}`) throw new Error(`${targets[k]!.name}: Allocate ${i} of round ${round + 1} served ${answer[0]?.envs['GPUSHARE_POD']}`);
        preferred.forEach((id) => used[k]!.add(id));
        const [tf] = await time(() => kubelet.options());
        await new Promise((r) => setTimeout(r, 10));
        const [ti] = await time(() => kubelet.options());
        const s = samples[k]!;
        s.Allocate.push(ta);
        s.GetPreferredAllocation.push(tp);
        s['floor: GetDevicePluginOptions'].push(tf);
        s['idle floor: the same after 10 ms'].push(ti);
      }
    }
    const cpuPerPod = await Promise.all(targets.map(async (t, k) => {
      await t.send('settle'); // the last pods' patches
      return (processCpuMs(t.child.pid) - cpuAtStart[k]!) / PODS;
    }));
    const overlaps = (gcs: [number, number][], [a, b]: [number, number]): boolean => gcs.some(([s, e]) => s < b && e > a);
    for (const [k, t] of targets.entries()) {
      const pluginGcs = JSON.parse((await t.send('gcs 0')).slice('done gcs '.length)) as [number, number][];
      const tally = tallies[k]!;
      if (round >= 0) {
        tally.cpuPerPod.push(cpuPerPod[k]!);
        tally.gcHit.pluginGcs += pluginGcs.length;
        tally.gcHit.pluginGcMs += pluginGcs.reduce((sum, [a, b]) => sum + b - a, 0);
        for (const span of spans[k]!) {
          const inPlugin = overlaps(pluginGcs, span);
          const inClient = overlaps(clientGcs, span);
          tally.gcHit.calls++;
          if (inPlugin) tally.gcHit.plugin++;
          if (inClient) tally.gcHit.client++;
          if (!inPlugin && !inClient) tally.noGc.push(span[1] - span[0]);
        }
        for (const op of OPS) {
          tally.pooled[op].push(...samples[k]![op]);
          const sorted = samples[k]![op].sort((a, b) => a - b);
          tally.perRound[op].p50.push(quantile(sorted, 0.5));
          tally.perRound[op].p99.push(quantile(sorted, 0.99));
        }
      }
      await t.send(`clear ${round + 1}`);
      await t.toApi?.(`remove ${round + 1}`);
      await t.send(`forgotten ${round + 1}`);
    }
  }
  for (const t of targets) {
    const exited = new Promise((r) => t.child.once('exit', r));
    t.child.stdin?.write('stop\n');
    await exited;
    if (t.apiChild !== null) {
      const apiExited = new Promise((r) => t.apiChild?.once('exit', r));
      t.apiChild.stdin?.write('stop\n');
      await apiExited;
    }
    await t.kubelet.stop();
    rmSync(t.root, { recursive: true, force: true });
  }

  const f = (v: number): string => v.toFixed(2);
  const summary = (v: number[]): string => {
    const s = [...v].sort((a, b) => a - b);
    return `${f(quantile(s, 0.5))} (${f(s[0] ?? NaN)}-${f(s[s.length - 1] ?? NaN)})`;
  };
  console.log(`device plugin over a Unix socket, ${ROUNDS} rounds x ${PODS} pods (${ROUNDS * PODS} Allocates${targets.length > 1 ? ' each, the builds called in turns' : ''}), the fake API server in ${API_INPROCESS ? "the plugin's process" : 'a process of its own'}${process.env['K8S_ALLOCATE_NODE_ARGS'] ? `, plugin flags ${process.env['K8S_ALLOCATE_NODE_ARGS']}` : ''}; ms, median of the rounds (range)`);
  console.log(`| build: call | p50 | slowest of a round's ${PODS} | p99 of all ${ROUNDS * PODS} |`);
  console.log('| --- | --- | --- | --- |');
  const all = (k: number, op: Op): number => quantile([...tallies[k]!.pooled[op]].sort((a, b) => a - b), 0.99);
  for (const [k, t] of targets.entries()) {
    for (const op of OPS) console.log(`| ${t.name}: ${op} | ${summary(tallies[k]!.perRound[op].p50)} | ${summary(tallies[k]!.perRound[op].p99)} | ${f(all(k, op))} |`);
  }
  for (const [k, t] of targets.entries()) {
    const { gcHit, noGc } = tallies[k]!;
    console.log(`${t.name}: the plugin process's CPU per pod (its four calls, the pod's patch, the watch event) ${summary(tallies[k]!.cpuPerPod)} ms, median of the rounds (range)`);
    console.log(`${t.name}: Allocates that overlapped a collection: ${gcHit.plugin} of ${gcHit.calls} in the plugin, ${gcHit.client} in this process (the kubelet's stand-in); p99 of the ${noGc.length} others ${f(quantile(noGc.sort((a, b) => a - b), 0.99))} ms; the plugin's collections during the rounds' calls: ${gcHit.pluginGcs}, ${f(gcHit.pluginGcMs)} ms in all`);
  }
  const p99 = all(0, 'Allocate');
  console.log(`this build's Allocate p99 of all calls ${f(p99)} ms: ${p99 <= BUDGET_MS ? 'within' : 'OVER'} the ${BUDGET_MS} ms budget`);
}

const pluginAt = process.argv.indexOf('--plugin');
const apiUrlAt = process.argv.indexOf('--api-url');
if (pluginAt >= 0) await pluginMode(process.argv[pluginAt + 1] ?? '', apiUrlAt >= 0 ? (process.argv[apiUrlAt + 1] ?? null) : null);
else if (process.argv.includes('--api')) await apiMode();
else await main();
