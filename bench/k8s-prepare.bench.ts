// NodePrepareResources over a real Unix socket (issue 18 budget: p99 <= 5 ms on this machine).
//
// The plugin runs in a child process (this file with --plugin), as it runs beside the kubelet:
// its claim source answers from memory with the API server's JSON for a one-GPU slice claim, so
// what is timed is the gRPC round trip, the claim's decoding and decision, the CDI spec and the
// checkpoint written, not an API server. The client is a gRPC client built from the project's
// .proto files, one call at a time as the kubelet makes them.
//
// Per claim: prepare (new claim), prepare again (the idempotent answer from the checkpoint) and
// unprepare, so the three see the same machine state; per round, each operation's p50 and p99;
// across rounds, the median and a 95% bootstrap interval of the rounds' values, and (since session
// 24) the p99 of all rounds' calls together. Per plugin, a fourth row interleaved the same way
// (since session 25) is the floor: NodePrepareResources naming no claim, the same server's round
// trip with no work. Before session 25 the floor was a 1 KiB write with fsync and rename in this
// process, what a prepare cost before the checkpoint stopped being fsynced; it is no longer on
// any plugin's path, and its flush forced a journal commit on the disk the plugins write to
// between their calls (bench work, not the plugin's): K8S_PREPARE_FSYNC_FLOOR=1 adds it back.
//
// The CDI directory: since session 25 on a tmpfs (a directory under /dev/shm, symlinked as the
// plugin's `cdi/`, so a baseline's own copy of this file gets it too), as /var/run/cdi is on a
// node; K8S_PREPARE_CDI_DISK=1 keeps it on the disk beside the plugin's state, as before. The
// claim directories and the checkpoint stay on the disk (/tmp), as /var/lib/kubelet is.
//
// K8S_PREPARE_BENCH_BASELINE=/other/checkout: that checkout's plugin (its own copy of this
// file, --plugin) runs as a second child, and every claim goes to both, in turns (the order
// reversed every other claim), so both see the same machine.
// K8S_PREPARE_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p': more node flags for the plugins.
// K8S_PREPARE_HEAP_SAMPLE=FILE: each plugin's allocations, garbage included, summed by function
// to stderr at the end (and FILE written); each plugin also prints its collections there.
// Env: K8S_PREPARE_ROUNDS (7), K8S_PREPARE_CLAIMS (300).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { writeFileAtomic } from '../src/k8s/cdi/write.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import { startHeapSampling } from './lib/heap-sample.js';
import { processCpuMs } from './lib/proc-cpu.js';
import { StaticInventory } from '../src/k8s/dra/kubelet-inventory.js';
import { startDraKubeletPlugin } from '../src/k8s/dra/kubelet-plugin.js';
import { claimJson, FakeKubelet, gpu } from '../test/k8s/dra-kubelet-fixtures.js';

const ROUNDS = Number(process.env['K8S_PREPARE_ROUNDS'] ?? 7);
const CLAIMS = Number(process.env['K8S_PREPARE_CLAIMS'] ?? 300);
const BUDGET_MS = 5;
const FSYNC_FLOOR = process.env['K8S_PREPARE_FSYNC_FLOOR'] === '1';
const CDI_ON_DISK = process.env['K8S_PREPARE_CDI_DISK'] === '1' || !existsSync('/dev/shm');

/** A claim for name `c-<n>`: 1 GiB and 1% of gpu-<n mod 8>, so prepared claims never run out of room. */
function claimFor(name: string): Record<string, unknown> {
  const n = Number(name.slice(2));
  return claimJson({ uid: `u-${n}`, name, namespace: 'bench', results: [{ device: `gpu-${n % 8}`, shareID: `s-${n}`, consumedCapacity: { memory: '1Gi', cores: '1' } }] });
}

async function pluginMode(root: string): Promise<void> {
  // K8S_PREPARE_HEAP_SAMPLE=FILE: the plugin's allocations, garbage included, summed to stderr at the end; and its collections.
  const heapSample = await startHeapSampling(process.env['K8S_PREPARE_HEAP_SAMPLE'], `plugin (${process.cwd()})`);
  const gcs = { count: 0, ms: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcs.count++;
      gcs.ms += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  writeFileSync(join(root, 'libgpushare.so'), 'bench');
  const plugin = await startDraKubeletPlugin({
    poolName: 'node-a',
    claims: { read: async (_namespace, name) => claimFor(name) },
    inventory: new StaticInventory(Array.from({ length: 8 }, (_, i) => gpu(i))),
    library: join(root, 'libgpushare.so'),
    registryDir: join(root, 'registry'), pluginDir: join(root, 'plugins'), cdiDir: join(root, 'cdi'),
    log: { info: () => undefined, error: (m) => process.stderr.write(`${m}\n`) },
  });
  process.stdout.write(`ready ${plugin.pluginSocket}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void (async () => {
    await heapSample?.();
    process.stderr.write(`plugin (${process.cwd()}): ${gcs.count} collections, ${gcs.ms.toFixed(1)} ms in all, warm-up included\n`);
    await plugin.close();
    process.exit(0);
  })());
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/** Median and a 95% percentile-bootstrap interval of the median (seeded, so reruns agree). */
function medianCi(values: readonly number[]): { median: number; low: number; high: number } {
  const med = (v: readonly number[]): number => quantile([...v].sort((a, b) => a - b), 0.5);
  let seed = 42;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const boots = Array.from({ length: 2000 }, () => med(values.map(() => values[Math.floor(rand() * values.length)] ?? 0))).sort((a, b) => a - b);
  return { median: med(values), low: quantile(boots, 0.025), high: quantile(boots, 0.975) };
}

/** A plugin child of the checkout at `root`, serving in its own state directory; resolves with its socket. */
async function startPlugin(checkout: string, name: string): Promise<{ name: string; socket: string; stop: () => Promise<void>; dir: string; pid: number | undefined }> {
  const dir = mkdtempSync(join(tmpdir(), 'gs-prepare-bench-'));
  // The CDI directory on a tmpfs, as /var/run/cdi is on a node: the plugin makes `<dir>/cdi`
  // with mkdir -p, which takes the link as it is.
  const cdi = CDI_ON_DISK ? null : mkdtempSync('/dev/shm/gs-prepare-cdi-');
  if (cdi !== null) symlinkSync(cdi, join(dir, 'cdi'));
  const script = join(checkout, 'bench', 'k8s-prepare.bench.ts');
  const nodeArgs = (process.env['K8S_PREPARE_BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, '--plugin', dir], { cwd: checkout, stdio: ['pipe', 'pipe', 'inherit'] });
  const socket = await new Promise<string>((resolveSocket, reject) => {
    let text = '';
    child.stdout.on('data', (b: Buffer) => {
      text += b.toString();
      const m = /ready (\S+)\n/.exec(text);
      if (m?.[1] !== undefined) resolveSocket(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${name}'s plugin exited ${code}`)));
  });
  const stop = async (): Promise<void> => {
    child.stdin.end();
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
    if (cdi !== null) rmSync(cdi, { recursive: true, force: true });
  };
  return { name, socket, stop, dir, pid: child.pid };
}

async function main(): Promise<void> {
  const here = resolve(fileURLToPath(new URL('..', import.meta.url)));
  const baseline = process.env['K8S_PREPARE_BENCH_BASELINE'];
  const plugins = [await startPlugin(here, 'this build')];
  if (baseline) plugins.push(await startPlugin(resolve(baseline), `baseline (${baseline})`));
  const kubelet = new FakeKubelet();
  const ops = ['prepare', 'prepare again', 'unprepare', 'floor: a call naming no claim'] as const;
  const FLOOR = 'fsync floor (this process): 1 KiB write + fsync + rename';
  const rows = [...plugins.flatMap((p) => ops.map((op) => `${p.name}: ${op}`)), ...(FSYNC_FLOOR ? [FLOOR] : [])];
  const perRound = new Map(rows.map((row) => [row, { p50: [] as number[], p99: [] as number[] }]));
  /** Every round's calls together: the p99 over all of them is the budget's quantile itself, steadier than any one round's. */
  const pooled = new Map(rows.map((row) => [row, [] as number[]]));
  const floorDir = mkdtempSync(join(tmpdir(), 'gs-prepare-floor-'));
  const floorFile = join(floorDir, 'floor.json');
  const floorText = 'x'.repeat(1024);
  const timed = async (fn: () => Promise<{ claims: Record<string, { error: string }> }>, claims = 1): Promise<number> => {
    const t0 = performance.now();
    const r = await fn();
    const ms = performance.now() - t0;
    const answers = Object.values(r.claims);
    if (answers.length !== claims || answers.some((a) => a.error !== '')) throw new Error(`the plugin answered ${JSON.stringify(r.claims)}`);
    return ms;
  };
  // Warm-up: connections, JIT, the first files.
  for (const p of plugins) {
    for (let i = 0; i < 50; i++) {
      const ref = { namespace: 'bench', name: `c-${1_000_000 + i}`, uid: `u-${1_000_000 + i}` };
      await timed(() => kubelet.prepare(p.socket, [ref]));
      await timed(() => kubelet.unprepare(p.socket, [ref]));
    }
  }
  /** Each plugin process's CPU ms per claim, per round (its four calls and whatever it does after them). */
  const cpuPerClaim = plugins.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    const samples = new Map(rows.map((row) => [row, [] as number[]]));
    const cpuAtStart = plugins.map((p) => processCpuMs(p.pid));
    const add = (row: string, ms: number): void => void samples.get(row)?.push(ms);
    for (let i = 0; i < CLAIMS; i++) {
      const n = round * CLAIMS + i;
      const ref = { namespace: 'bench', name: `c-${n}`, uid: `u-${n}` };
      for (const p of i % 2 === 0 ? plugins : [...plugins].reverse()) {
        add(`${p.name}: prepare`, await timed(() => kubelet.prepare(p.socket, [ref])));
        add(`${p.name}: prepare again`, await timed(() => kubelet.prepare(p.socket, [ref])));
        add(`${p.name}: unprepare`, await timed(() => kubelet.unprepare(p.socket, [ref])));
        add(`${p.name}: floor: a call naming no claim`, await timed(() => kubelet.prepare(p.socket, []), 0));
      }
      if (FSYNC_FLOOR) {
        const t0 = performance.now();
        writeFileAtomic(floorFile, floorText);
        add(FLOOR, performance.now() - t0);
      }
    }
    plugins.forEach((p, k) => cpuPerClaim[k]?.push((processCpuMs(p.pid) - (cpuAtStart[k] ?? NaN)) / CLAIMS));
    for (const row of rows) {
      pooled.get(row)?.push(...(samples.get(row) ?? []));
      const sorted = (samples.get(row) ?? []).sort((a, b) => a - b);
      perRound.get(row)?.p50.push(quantile(sorted, 0.5));
      perRound.get(row)?.p99.push(quantile(sorted, 0.99));
    }
  }
  kubelet.close();
  for (const p of plugins) await p.stop();
  rmSync(floorDir, { recursive: true, force: true });

  const f = (v: number): string => v.toFixed(2);
  console.log(`NodePrepareResources over a Unix socket, ${ROUNDS} rounds x ${CLAIMS} claims, the CDI directory ${CDI_ON_DISK ? 'on the disk' : 'on a tmpfs (/dev/shm)'} (ms; median of the rounds [95% CI])`);
  console.log(`| build: operation | p50 | p99 | p99 of all ${ROUNDS * CLAIMS} |`);
  console.log('| --- | --- | --- | --- |');
  const all = (row: string): number => quantile([...(pooled.get(row) ?? [])].sort((a, b) => a - b), 0.99);
  for (const row of rows) {
    const r = perRound.get(row) ?? { p50: [], p99: [] };
    const p50 = medianCi(r.p50);
    const p99 = medianCi(r.p99);
    console.log(`| ${row} | ${f(p50.median)} [${f(p50.low)}, ${f(p50.high)}] | ${f(p99.median)} [${f(p99.low)}, ${f(p99.high)}] | ${f(all(row))} |`);
  }
  plugins.forEach((p, k) => {
    const c = medianCi(cpuPerClaim[k] ?? []);
    console.log(`${p.name}: the plugin process's CPU per claim (prepare, again, unprepare, the empty call) ${f(c.median)} ms [${f(c.low)}, ${f(c.high)}]`);
  });
  const worst = medianCi(perRound.get('this build: prepare')?.p99 ?? []).median;
  console.log(`this build's prepare p99 ${f(worst)} ms (median of the rounds), ${f(all('this build: prepare'))} ms (all claims): ${Math.max(worst, all('this build: prepare')) <= BUDGET_MS ? 'within' : 'OVER'} the ${BUDGET_MS} ms budget`);
}

const pluginAt = process.argv.indexOf('--plugin');
if (pluginAt >= 0) await pluginMode(process.argv[pluginAt + 1] ?? '');
else await main();
