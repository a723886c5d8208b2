// Issue 19's budgets for the monitor: GET /metrics with 8 GPUs and 64 slices at p99 <= 10 ms,
// and sampling once a second at < 1% of a core (CPU time per sample). In-process: the
// exporter's render (a new sample applied each scrape, the worst case: the daemon scrapes a
// sample once) and the sampler's reading of a simulated 8-GPU machine with 64 running tasks.
// Interleaved rounds (text, OpenMetrics, text with both compat sets), medians of the rounds.
// Also the supervisor's region sum per task, before (limited bytes and share only) and now (by
// kind, kernels, busy and throttle time too), on a real region file, interleaved.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SAMPLE_MEMORY_KINDS, type MonitorSample } from '../src/contract/monitor.js';
import { openBackend } from '../src/gpu/open.js';
import { readRegion } from '../src/gpu/region/index.js';
import { regionTool } from '../src/gpu/region/native.js';
import { SampleHub } from '../src/monitor/hub.js';
import { MetricsExporter, type MetricsCompatSet } from '../src/monitor/metrics/exporter.js';
import { buildSample, Sampler, type MonitoredTask } from '../src/monitor/sampler.js';
import { usageByDevice } from '../src/node/supervisor.js';

const ROUNDS = 7;
const SCRAPES = 300;
const SAMPLES = 300;
const GPUS = 8;
const SLICES = 64;

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: readonly number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;

const { backend } = openBackend({ backend: 'simulated', simulate: `${GPUS}xH100-80GB` });
const gpus = backend.gpus();
const bytesByKind = Object.fromEntries(SAMPLE_MEMORY_KINDS.map((k, i) => [k, (i + 1) * 1_048_576])) as Record<(typeof SAMPLE_MEMORY_KINDS)[number], number>;
const tasks: MonitoredTask[] = Array.from({ length: SLICES }, (_, i) => ({
  task: { id: `task${String(i).padStart(4, '0')}abcdef`, state: 'running', tenant: `tenant${i % 8}`, computeLimitPercent: 10, submittedAt: 1_000 },
  gpus: [{ index: i % GPUS, uuid: gpus[i % GPUS]!.uuid, memoryBytes: 8 * 2 ** 30, computeMilli: 100 }],
  usage: [{ device: 0, memoryBytes: 3 * 2 ** 30 + i, computeShare: 0.09, bytesByKind, kernelsLaunched: 1_000_000 + i, busyNs: 5e9, throttleNs: 1e9 }],
}));
const tenants = Array.from({ length: 8 }, (_, i) => ({ name: `tenant${i}`, usage: { gpus: 8, memoryBytes: 64 * 2 ** 30, computeMilli: 800 }, quota: { gpus: 16, memoryBytes: null, computeMilli: 4000 } }));

function exporterWith(compat: readonly MetricsCompatSet[]): { hub: SampleHub; m: MetricsExporter } {
  const hub = new SampleHub();
  const m = new MetricsExporter({ samples: hub, tenants: () => tenants, submittedAt: () => null, compat });
  for (let i = 0; i < 50; i++) m.observeRequest(`/v1/route${i % 10}`, 'GET', 200, 0.001 * i);
  return { hub, m };
}

/**
 * Milliseconds per scrape, each with a fresh sample published before it: wall time, and this
 * thread's CPU time (on a machine loaded by others, wall time's tail is mostly waiting for a core).
 */
async function scrapes(x: { hub: SampleHub; m: MetricsExporter }, accept: string | undefined): Promise<{ wall: number[]; cpu: number[] }> {
  const wall: number[] = [];
  const cpu: number[] = [];
  let bytes = 0;
  for (let i = 0; i < SCRAPES; i++) {
    x.hub.publish(buildSample({ at: Date.now(), hostname: 'bench', gpus, tasks }));
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    bytes = (await x.m.render(accept)).body.length;
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  sizes.set(accept ?? 'text', bytes);
  return { wall, cpu };
}
const sizes = new Map<string, number>();

const variants = {
  text: { x: exporterWith([]), accept: undefined },
  openmetrics: { x: exporterWith([]), accept: 'application/openmetrics-text;version=1.0.0' },
  'text + dcgm + hami': { x: exporterWith(['dcgm', 'hami']), accept: 'text/plain' },
} as const;
const results = new Map<string, { p50: number[]; p99: number[]; cpu50: number[]; cpu99: number[] }>(Object.keys(variants).map((k) => [k, { p50: [], p99: [], cpu50: [], cpu99: [] }]));
const samplerCpu: number[] = [];

/** CPU seconds per sample: the simulated backend's reading, buildSample and publishing to a listening exporter. */
function sampling(): number {
  const hub = new SampleHub();
  let n = 0;
  const sampler = new Sampler({ backend, daemon: { monitoredTasks: () => tasks }, publish: (s: MonitorSample) => { hub.publish(s); n += 1; }, periodMs: 3_600_000, onError: (e) => { throw e; } });
  for (let i = 1; i < SAMPLES; i++) sampler.sampleNow();
  sampler.close();
  const { cpuSeconds, samples } = sampler.cost();
  if (n !== samples) throw new Error('a sample failed');
  return cpuSeconds / samples;
}

// --- the supervisor's per-task region sum, before and now -------------------------------------

/** The sum the supervisor made before this change: limited bytes and achieved share per device. */
function beforeSum(path: string): number {
  const devices = new Map<number, { memoryBytes: number; computeShare: number }>();
  let bytes = 0;
  for (const slot of readRegion(path).slots) {
    for (const d of slot.devices) {
      bytes += d.limitedBytes;
      const u = devices.get(d.device) ?? { memoryBytes: 0, computeShare: 0 };
      u.memoryBytes += d.limitedBytes;
      u.computeShare += d.achievedShare;
      devices.set(d.device, u);
    }
  }
  return bytes + devices.size;
}

function nowSum(path: string): number {
  const u = usageByDevice(readRegion(path).slots);
  return u.reduce((s, d) => s + d.memoryBytes, 0) + u.length;
}

const dir = mkdtempSync(join(tmpdir(), 'gs-metrics-bench-'));
const regionPath = join(dir, 'region');
const fixture = spawn(regionTool('region_fixture'), [regionPath], { stdio: ['pipe', 'pipe', 'inherit'] });
await new Promise<string>((resolve) => createInterface({ input: fixture.stdout }).once('line', resolve));
const regionUs: Record<'before' | 'now', number[]> = { before: [], now: [] };
const READS = 200;
const timeReads = (sum: (p: string) => number): number => {
  const t0 = performance.now();
  for (let i = 0; i < READS; i++) sum(regionPath);
  return ((performance.now() - t0) * 1000) / READS;
};

for (let r = 0; r < ROUNDS; r++) {
  for (const [name, v] of Object.entries(variants)) {
    const { wall, cpu } = await scrapes(v.x, v.accept);
    const r = results.get(name)!;
    r.p50.push(quantile(wall, 0.5));
    r.p99.push(quantile(wall, 0.99));
    r.cpu50.push(quantile(cpu, 0.5));
    r.cpu99.push(quantile(cpu, 0.99));
  }
  samplerCpu.push(sampling());
  regionUs.before.push(timeReads(beforeSum));
  regionUs.now.push(timeReads(nowSum));
}
fixture.stdin.end('\n');
await new Promise((resolve) => fixture.on('exit', resolve));
rmSync(dir, { recursive: true, force: true });

console.log(`GET /metrics render, ${GPUS} GPUs and ${SLICES} slices, ${SCRAPES} scrapes a round, ${ROUNDS} interleaved rounds (median of the rounds' figures; budget p99 <= 10 ms):`);
for (const [name, r] of results) {
  console.log(`  ${name.padEnd(20)} wall p50 ${median(r.p50).toFixed(2)} ms  p99 ${median(r.p99).toFixed(2)} ms   CPU p50 ${median(r.cpu50).toFixed(2)} ms  p99 ${median(r.cpu99).toFixed(2)} ms   (${sizes.get(variants[name as keyof typeof variants].accept ?? 'text')} bytes)`);
}
const perSample = median(samplerCpu);
console.log(`sampling (simulated backend, ${GPUS} GPUs, ${SLICES} tasks): ${(perSample * 1e3).toFixed(3)} ms CPU per sample = ${(perSample * 100).toFixed(3)}% of a core at 1 sample/s (budget < 1%)`);
console.log(`supervisor region sum per task (readRegion + sum, ${READS} reads a round): before ${median(regionUs.before).toFixed(1)} µs, now ${median(regionUs.now).toFixed(1)} µs`);
backend.close();
