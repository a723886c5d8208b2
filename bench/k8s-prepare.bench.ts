// NodePrepareResources over a real Unix socket (issue 18 budget: p99 <= 5 ms on this machine).
//
// The plugin runs in a child process (this file with --plugin), as it runs beside the kubelet:
// its claim source answers from memory with the API server's JSON for a one-GPU slice claim, so
// what is timed is the gRPC round trip, the claim's decoding and decision, the CDI spec and the
// checkpoint written (each temp + fsync + rename), not an API server. The client is a gRPC
// client built from the project's .proto files, one call at a time as the kubelet makes them.
//
// Interleaved rounds: each round runs, per claim, prepare (new claim), prepare again (the
// idempotent answer from the checkpoint) and unprepare, so the three see the same machine state;
// per round, each operation's p50 and p99; across rounds, the median and a 95% bootstrap
// interval of the rounds' values. A fourth row, interleaved the same way, is the disk's floor:
// one write of a checkpoint-sized file with fsync and rename in this process, the one flush a
// prepare (and an unprepare) cannot skip. Env: K8S_PREPARE_ROUNDS (7), K8S_PREPARE_CLAIMS (300).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { writeFileAtomic } from '../src/k8s/cdi/write.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StaticInventory } from '../src/k8s/dra/kubelet-inventory.js';
import { startDraKubeletPlugin } from '../src/k8s/dra/kubelet-plugin.js';
import { claimJson, FakeKubelet, gpu } from '../test/k8s/dra-kubelet-fixtures.js';

const ROUNDS = Number(process.env['K8S_PREPARE_ROUNDS'] ?? 7);
const CLAIMS = Number(process.env['K8S_PREPARE_CLAIMS'] ?? 300);
const BUDGET_MS = 5;

/** A claim for name `c-<n>`: 1 GiB and 1% of gpu-<n mod 8>, so prepared claims never run out of room. */
function claimFor(name: string): Record<string, unknown> {
  const n = Number(name.slice(2));
  return claimJson({ uid: `u-${n}`, name, namespace: 'bench', results: [{ device: `gpu-${n % 8}`, shareID: `s-${n}`, consumedCapacity: { memory: '1Gi', cores: '1' } }] });
}

async function pluginMode(root: string): Promise<void> {
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
  process.stdin.on('end', () => void plugin.close().then(() => process.exit(0)));
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

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'gs-prepare-bench-'));
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--plugin', root], { stdio: ['pipe', 'pipe', 'inherit'] });
  const socket = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (b: Buffer) => {
      text += b.toString();
      const m = /ready (\S+)\n/.exec(text);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`plugin exited ${code}`)));
  });
  const kubelet = new FakeKubelet();
  const ops = ['prepare', 'prepare again', 'unprepare', 'floor: 1 KiB write + fsync + rename'] as const;
  type Op = (typeof ops)[number];
  const perRound = Object.fromEntries(ops.map((op) => [op, { p50: [] as number[], p99: [] as number[] }])) as Record<Op, { p50: number[]; p99: number[] }>;
  const floorFile = join(root, 'floor.json');
  const floorText = 'x'.repeat(1024);
  const timed = async (fn: () => Promise<{ claims: Record<string, { error: string }> }>): Promise<number> => {
    const t0 = performance.now();
    const r = await fn();
    const ms = performance.now() - t0;
    const error = Object.values(r.claims)[0]?.error;
    if (error !== '') throw new Error(`the plugin answered an error: ${error}`);
    return ms;
  };
  // Warm-up: connections, JIT, the first files.
  for (let i = 0; i < 50; i++) {
    const ref = { namespace: 'bench', name: `c-${1_000_000 + i}`, uid: `u-${1_000_000 + i}` };
    await timed(() => kubelet.prepare(socket, [ref]));
    await timed(() => kubelet.unprepare(socket, [ref]));
  }
  for (let round = 0; round < ROUNDS; round++) {
    const samples = Object.fromEntries(ops.map((op) => [op, [] as number[]])) as Record<Op, number[]>;
    for (let i = 0; i < CLAIMS; i++) {
      const n = round * CLAIMS + i;
      const ref = { namespace: 'bench', name: `c-${n}`, uid: `u-${n}` };
      samples.prepare.push(await timed(() => kubelet.prepare(socket, [ref])));
      samples['prepare again'].push(await timed(() => kubelet.prepare(socket, [ref])));
      samples.unprepare.push(await timed(() => kubelet.unprepare(socket, [ref])));
      const t0 = performance.now();
      writeFileAtomic(floorFile, floorText);
      samples['floor: 1 KiB write + fsync + rename'].push(performance.now() - t0);
    }
    for (const op of ops) {
      const sorted = samples[op].sort((a, b) => a - b);
      perRound[op].p50.push(quantile(sorted, 0.5));
      perRound[op].p99.push(quantile(sorted, 0.99));
    }
  }
  kubelet.close();
  child.stdin.end();
  await new Promise((resolve) => child.once('exit', resolve));
  rmSync(root, { recursive: true, force: true });

  const f = (v: number): string => v.toFixed(2);
  console.log(`NodePrepareResources over a Unix socket, ${ROUNDS} rounds x ${CLAIMS} claims (ms; median of the rounds [95% CI])`);
  console.log('| operation | p50 | p99 |');
  console.log('| --- | --- | --- |');
  for (const op of ops) {
    const p50 = medianCi(perRound[op].p50);
    const p99 = medianCi(perRound[op].p99);
    console.log(`| ${op} | ${f(p50.median)} [${f(p50.low)}, ${f(p50.high)}] | ${f(p99.median)} [${f(p99.low)}, ${f(p99.high)}] |`);
  }
  const worst = medianCi(perRound.prepare.p99).median;
  console.log(`prepare p99 ${f(worst)} ms: ${worst <= BUDGET_MS ? 'within' : 'OVER'} the ${BUDGET_MS} ms budget`);
}

const pluginAt = process.argv.indexOf('--plugin');
if (pluginAt >= 0) await pluginMode(process.argv[pluginAt + 1] ?? '');
else await main();
