// Issue 19's sampling budget in Kubernetes mode: the node agent samples every second (the
// default metrics.sampleSeconds) at < 1% of a core. What the agent's sampler does each period:
// reads the node's GPUs (simulated backend, 8 GPUs), finds each slice's owner (the classic
// plugin's ledger, and the DRA claims matched to the node's pods: draOwners over 110 pods), reads
// each slice's region file (readPodSlices) and builds and publishes the sample. Regions: copies
// of a real region (region_fixture: two processes attached, every kind of bytes), one per slice.
// Slices: 8 (one pod per GPU), 16 and 64 (half classic, half DRA); interleaved rounds, medians
// of the rounds' CPU per sample, and the region reads alone beside them.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { V1Pod } from '@kubernetes/client-node';
import { openBackend } from '../src/gpu/open.js';
import { readRegion } from '../src/gpu/region/index.js';
import { regionTool } from '../src/gpu/region/native.js';
import { draOwners, readPodSlices, type PodSliceOwner } from '../src/k8s/agent/pod-slices.js';
import { DEFAULT_GPU_CONFIG } from '../src/k8s/dra/config.js';
import type { PreparedClaim } from '../src/k8s/dra/prepare.js';
import { SampleHub } from '../src/monitor/hub.js';
import { Sampler } from '../src/monitor/sampler.js';

const ROUNDS = 7;
const SAMPLES = 100;
const GPUS = 8;
const SIZES = [8, 16, 64] as const;
const PODS = 110;

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const { backend } = openBackend({ backend: 'simulated', simulate: `${GPUS}xH100-80GB` });
const gpus = backend.gpus();
const dir = mkdtempSync(join(tmpdir(), 'gs-agent-metrics-bench-'));
const source = join(dir, 'source-region');
const fixture = spawn(regionTool('region_fixture'), [source], { stdio: ['pipe', 'pipe', 'inherit'] });
await new Promise<string>((resolve) => createInterface({ input: fixture.stdout }).once('line', resolve));

/** `n` slices on the node: the first half the classic plugin's containers, the rest DRA claims, each with its own region. */
function node(n: number): { classic: PodSliceOwner[]; claims: PreparedClaim[]; pods: V1Pod[]; regionOf: (c: PreparedClaim) => string } {
  const region = (i: number): string => {
    const path = join(dir, `n${n}`, `slice${i}`, 'region');
    mkdirSync(join(path, '..'), { recursive: true });
    copyFileSync(source, path);
    return path;
  };
  const half = Math.floor(n / 2);
  const classic = Array.from({ length: half }, (_, i): PodSliceOwner => ({ namespace: `ns${i % 8}`, pod: `classic-${i}`, container: 'main', podUid: `uid-classic-${i}`, gpus: [gpus[i % GPUS]!.uuid], region: region(i) }));
  const claims = Array.from({ length: n - half }, (_, j): PreparedClaim => {
    const g = gpus[j % GPUS]!;
    return { uid: `claim-${j}`, namespace: `ns${j % 8}`, name: `claim-${j}`, config: DEFAULT_GPU_CONFIG, smRanges: [], devices: [{ request: 'gpu', pool: 'node', device: `gpu-${g.index}`, shareId: null, gpuUuid: g.uuid, gpuIndex: g.index, gpuMemoryBytes: g.memoryTotalBytes, deviceNode: `/dev/nvidia${g.index}`, memoryBytes: 8 * 2 ** 30, cores: 25 }] };
  });
  const regions = new Map(claims.map((c, j) => [c.uid, region(half + j)]));
  // The node's pods: one per claim and the rest without GPUs (daemons, sidecar-only pods).
  const pods = Array.from({ length: PODS }, (_, k): V1Pod => ({
    metadata: { namespace: `ns${k % 8}`, name: `pod-${k}`, uid: `uid-pod-${k}` },
    spec: { containers: [{ name: 'main', resources: { claims: k < claims.length ? [{ name: 'gpu' }] : [] } }] },
    status: k < claims.length ? { resourceClaimStatuses: [{ name: 'gpu', resourceClaimName: claims[k]!.name }] } : {},
  }));
  return { classic, claims, pods, regionOf: (c) => regions.get(c.uid)! };
}

/** CPU seconds per sample of the agent's sampler over `n` slices. */
function sampling(n: ReturnType<typeof node>): number {
  const hub = new SampleHub();
  const owners = (): PodSliceOwner[] => [...n.classic, ...draOwners(n.claims, n.regionOf, n.pods)];
  const sampler = new Sampler({ backend: { gpus: () => backend.gpus() }, containers: () => readPodSlices(owners(), gpus, () => false), publish: (s) => hub.publish(s), periodMs: 3_600_000, hostname: 'bench-node', onError: (e) => { throw e; } });
  for (let i = 1; i < SAMPLES; i++) sampler.sampleNow();
  sampler.close();
  const { cpuSeconds, samples } = sampler.cost();
  return cpuSeconds / samples;
}

/** CPU seconds to read `n`'s regions once (readRegion of each). */
function regionReads(n: ReturnType<typeof node>): number {
  const paths = [...n.classic.map((o) => o.region), ...n.claims.map(n.regionOf)];
  const c0 = process.cpuUsage();
  for (let i = 0; i < SAMPLES; i++) for (const p of paths) readRegion(p);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6 / SAMPLES;
}

const nodes = SIZES.map((s) => ({ slices: s, n: node(s), sample: [] as number[], reads: [] as number[] }));
for (let r = 0; r < ROUNDS; r++) {
  for (const x of nodes) {
    x.sample.push(sampling(x.n));
    x.reads.push(regionReads(x.n));
  }
}
fixture.stdin.end('\n');
await new Promise((resolve) => fixture.on('exit', resolve));
rmSync(dir, { recursive: true, force: true });
backend.close();

console.log(`node agent sampling, ${GPUS} simulated GPUs, ${SAMPLES} samples a round, ${ROUNDS} interleaved rounds (median of the rounds; budget < 1% of a core at 1 sample/s):`);
for (const x of nodes) {
  const s = median(x.sample);
  console.log(`  ${String(x.slices).padStart(2)} slices: ${(s * 1e3).toFixed(3)} ms CPU per sample = ${(s * 100).toFixed(3)}% of a core at 1 sample/s; of which region reads ${(median(x.reads) * 1e3).toFixed(3)} ms`);
}
