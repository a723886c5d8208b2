/**
 * The node agent's GET /metrics (Kubernetes mode, no daemon): the node's GPUs and each pod
 * container's slice, read with the daemon's own sampler and exporter. The "containers" are
 * fake-train on the fake CUDA driver with the real libgpushare preloaded, each attached to its
 * own region (as a container is through the device plugin's mounts and variables); the scrape
 * must show each slice with its pod's labels and memory equal to its region to the byte.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../../src/gpu/open.js';
import { readRegion, usageByDevice } from '../../src/gpu/region/index.js';
import { startNodeAgent, type NodeAgent } from '../../src/k8s/agent/agent.js';
import { resolveAgentConfig } from '../../src/k8s/agent/config.js';
import type { PodSliceOwner } from '../../src/k8s/agent/pod-slices.js';
import { DEFAULT_GPU_CONFIG } from '../../src/k8s/dra/config.js';
import { currentBootId, writeCheckpoint } from '../../src/k8s/dra/kubelet-checkpoint.js';
import { DRIVER_NAME } from '../../src/k8s/dra/names.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { parseExposition } from '../helpers/exposition.js';
import { dashboardQueries } from '../helpers/grafana.js';
import { recordingLog } from './agent-fixtures.js';
import { startFakeApiServer, until, type FakeApiServer } from './fake-apiserver.js';

const TRAIN = `${REPO_ROOT}build/native/fake/fake-train`;
const LIBRARY = `${REPO_ROOT}build/native/libgpushare.so`;
const NODE = 'gpu-node-3';
const MIB = 2 ** 20;

const root = mkdtempSync(join(tmpdir(), 'gs-agent-metrics-'));
const { backend } = openBackend({ simulate: '2xH100-80GB' });
const gpus = backend.gpus();
const { log } = recordingLog();
const children: ChildProcess[] = [];
let api: FakeApiServer;
let agent: NodeAgent;

/** Two containers of two pods, on the node's two GPUs, each with its own region and memory limit. */
const owners: (PodSliceOwner & { limit: number; mib: number })[] = [
  { namespace: 'ml', pod: 'trainer-0', container: 'main', gpus: [gpus[0]!.uuid], region: join(root, 'c0', 'region'), limit: 1024 * MIB, mib: 24 },
  { namespace: 'research', pod: 'eval-7f', container: 'worker', gpus: [gpus[1]!.uuid], region: join(root, 'c1', 'region'), limit: 512 * MIB, mib: 40 },
];

/** fake-train holding `mib` MiB under libgpushare, attached to `region` with `limit` bytes. */
async function container(region: string, limit: number, mib: number): Promise<void> {
  mkdirSync(join(region, '..'), { recursive: true });
  const child = spawn(TRAIN, ['100000', '50', String(mib), '7'], {
    detached: true,
    env: { ...process.env, LD_PRELOAD: LIBRARY, GPUSHARE_REGION: region, GPUSHARE_MEMORY_LIMIT: String(limit), GPUSHARE_FAKE_CUDA: JSON.stringify({ contextBytes: 3 * MIB }) },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  await until(() => out.includes('ready'), 10_000, 'fake-train ready');
}

function scrape(address: string, accept?: string): Promise<{ status: number; type: string; body: string }> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/metrics', headers: accept === undefined ? {} : { accept } }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of `name`'s one series whose labels include every one of `labels`. */
function value(body: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = body.split('\n').find((l) => l.startsWith(`${name}{`) && want.every((w) => l.slice(0, l.lastIndexOf('}')).includes(w)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

beforeAll(async () => {
  expect(existsSync(TRAIN), `${TRAIN} is built by npm run build`).toBe(true);
  api = await startFakeApiServer();
  api.seed('nodes', { metadata: { name: NODE, uid: 'node-uid-3' } });
  for (const o of owners) await container(o.region, o.limit, o.mib);
  const file = join(root, 'agent.json');
  writeFileSync(file, JSON.stringify({ dra: { enabled: false }, classic: { enabled: true }, suspend: { enabled: false }, metrics: { compat: ['hami'], sampleSeconds: 3600 } }));
  const config = resolveAgentConfig({ config: file, nodeName: NODE, healthListen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' }, {});
  // The classic plugin as the agent sees it: the containers it served, with their regions.
  const startClassic = async () => ({ regionsOf: () => [], notReady: () => null, close: async () => {}, slices: () => owners });
  agent = await startNodeAgent({ config: { ...config, pollMs: 0 }, backend, kubeConfig: api.kubeConfig(), log, checkpoint: { ok: false, error: { message: 'none in this test' } }, startClassic });
}, 30_000);

afterAll(async () => {
  await agent?.close();
  for (const c of children) if (c.pid !== undefined) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  backend.close();
  await api?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('the node agent serves /metrics', () => {
  it("shows each pod container's slice with its pod's labels and its region's memory to the byte", async () => {
    const monitor = agent.monitor;
    if (monitor === null) throw new Error('the agent started no monitor');
    // A region read before and after the sample that agree: the figures did not move in between.
    let expected: number[] = [];
    await until(() => {
      const before = owners.map((o) => usageByDevice(readRegion(o.region).slots)[0]?.memoryBytes ?? 0);
      monitor.sampleNow();
      const after = owners.map((o) => usageByDevice(readRegion(o.region).slots)[0]?.memoryBytes ?? 0);
      expected = after;
      return before.every((b, i) => b === after[i] && b > 0);
    }, 10_000, 'regions steady across a sample');
    const { status, type, body } = await scrape(monitor.address);
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain/);
    owners.forEach((o, i) => {
      const gpu = gpus[i]!;
      const labels = { namespace: o.namespace, pod: o.pod, container: o.container, uuid: gpu.uuid, gpu: String(gpu.index), hostname: NODE };
      expect(value(body, 'gpushare_slice_memory_used_bytes', labels)).toBe(expected[i]);
      // The region's limit, and its bytes by kind: the context libgpushare counts plus the held memory.
      expect(value(body, 'gpushare_slice_memory_limit_bytes', labels)).toBe(o.limit);
      expect(expected[i]).toBeGreaterThanOrEqual(o.mib * MIB);
      expect(value(body, 'gpushare_slice_memory_bytes', { ...labels, kind: 'context' })).toBe(usageByDevice(readRegion(o.region).slots)[0]?.bytesByKind.context);
      expect(value(body, 'gpushare_slice_state', { ...labels, state: 'running' })).toBe(1);
      // HAMi's names (metrics.compat) with the same pod labels.
      expect(value(body, 'hami_vgpu_memory_used_bytes', { namespace: o.namespace, pod: o.pod, container: o.container, device_uuid: gpu.uuid })).toBe(expected[i]);
      expect(value(body, 'hami_vgpu_memory_limit_bytes', { namespace: o.namespace, pod: o.pod, container: o.container, device_uuid: gpu.uuid })).toBe(o.limit);
    });
    // The node's GPUs, labelled with the node's name; no daemon families (no queue or API here).
    for (const g of gpus) expect(value(body, 'gpushare_gpu_memory_total_bytes', { gpu: String(g.index), uuid: g.uuid, model: g.model, hostname: NODE })).toBe(g.memoryTotalBytes);
    expect(body).not.toMatch(/gpushare_api_request|gpushare_queue_wait/);
  });

  it('speaks OpenMetrics when asked, and answers other paths 404', async () => {
    const monitor = agent.monitor!;
    const om = await scrape(monitor.address, 'application/openmetrics-text; version=1.0.0');
    expect(om.type).toMatch(/application\/openmetrics-text/);
    expect(om.body.endsWith('# EOF\n')).toBe(true);
    expect(om.body).toMatch(/^gpushare_slice_kernel_launches_total\{.*pod="trainer-0".*\} \d+$/m);
  });

  it("feeds the Grafana dashboard in Kubernetes mode: its variables, and every panel but the daemon's own (queue, tenants' quotas, scheduling, API)", async () => {
    const monitor = agent.monitor!;
    monitor.sampleNow();
    const { body } = await scrape(monitor.address);
    const samples = parseExposition(body);
    // The families it serves: those with samples now, and those declared (# TYPE) with none now
    // (no slice here has a compute limit, so gpushare_slice_compute_limit_ratio has no sample).
    const emitted = new Set([...samples.map((x) => x.name), ...[...body.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!)]);
    const dashboard = dashboardQueries();
    // Each variable reads a family the agent emits; the tenant one lists the pods' namespaces.
    for (const v of dashboard.variables) expect(v.metrics.some((m) => emitted.has(m)), `variable ${v.name}: ${v.metrics.join(', ')}`).toBe(true);
    const tenants = new Set(samples.filter((x) => x.name === 'gpushare_slice_memory_limit_bytes').map((x) => x.labels['tenant']));
    expect([...tenants].sort()).toEqual(['ml', 'research']);
    // The daemon's own families, which an agent has no source for: a panel of only those is the
    // daemon's; any other must have a target whose every name is emitted or the daemon's (the
    // tenant panels' `gpushare_tenant_usage ... or on (tenant) <from the slices>`) and one emitted.
    const daemonOnly = /^gpushare_(queue|scheduling|suspend|resume|api_request|tenant_usage|tenant_quota|gpu_cordoned)(_|$)/;
    const fed = (names: readonly string[]): boolean => names.some((n) => emitted.has(n)) && names.every((n) => emitted.has(n) || daemonOnly.test(n));
    const panels = dashboard.panels.filter((p) => p.type !== 'row' && !p.targets.flat().every((n) => daemonOnly.test(n)));
    expect(panels.filter((p) => !p.targets.some(fed)).map((p) => p.title)).toEqual([]);
    expect(panels.filter((p) => p.title.startsWith('Tenant ')).length).toBe(3);
  });
});

describe('DRA slices carry their pod without the suspender', () => {
  it("names the pod and containers of a prepared claim from the agent's own pod watch, and follows pods that come later", async () => {
    // A claim the DRA plugin prepared before (its checkpoint, read at start), on GPU 0.
    const pluginDir = join(root, 'dra-plugins');
    mkdirSync(join(pluginDir, DRIVER_NAME), { recursive: true });
    const g = gpus[0]!;
    const device = { request: 'gpu', pool: NODE, device: 'gpu-0', shareId: null, gpuUuid: g.uuid, gpuIndex: g.index, gpuMemoryBytes: g.memoryTotalBytes, deviceNode: '/dev/nvidia0', memoryBytes: 8 * 1024 * MIB, cores: 30 };
    const claims = ['train-gpu', 'later-gpu'].map((name) => ({ uid: `uid-${name}`, namespace: 'ml', name, devices: [device], config: DEFAULT_GPU_CONFIG, smRanges: [] }));
    writeCheckpoint(join(pluginDir, DRIVER_NAME, 'checkpoint.json'), currentBootId(), claims);
    const podUsing = (name: string, claim: string, node: string) => ({
      metadata: { name, namespace: 'ml', uid: `uid-pod-${name}` },
      spec: { nodeName: node, containers: [{ name: 'main', image: 'x', resources: { claims: [{ name: 'gpu' }] } }, { name: 'sidecar', image: 'x' }] },
      status: { resourceClaimStatuses: [{ name: 'gpu', resourceClaimName: claim }] },
    });
    api.seed('pods', podUsing('trainer', 'train-gpu', NODE));
    // A pod of another node naming the same claim name: not this node's, never its label.
    api.seed('pods', podUsing('elsewhere', 'later-gpu', 'gpu-node-9'));
    const library = join(root, 'libgpushare-copy.so');
    writeFileSync(library, 'not really a library');
    const file = join(root, 'agent-dra.json');
    writeFileSync(file, JSON.stringify({ dra: { enabled: true }, classic: { enabled: false }, suspend: { enabled: false }, metrics: { sampleSeconds: 3600 } }));
    const config = resolveAgentConfig({ config: file, nodeName: NODE, library, pluginDir, registryDir: join(root, 'dra-registry'), cdiDir: join(root, 'dra-cdi'), healthListen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' }, {});
    const dra = await startNodeAgent({ config: { ...config, pollMs: 0 }, backend, kubeConfig: api.kubeConfig(), log, checkpoint: { ok: false, error: { message: 'none in this test' } }, deviceNode: (x) => `/dev/nvidia${x.index}` });
    try {
      expect(dra.suspender).toBeNull();
      const monitor = dra.monitor!;
      // The claims' decided slices (no region yet: no process used CUDA), by the pod they name.
      const limit = async (pod: string): Promise<number | undefined> => {
        monitor.sampleNow();
        return value((await scrape(monitor.address)).body, 'gpushare_slice_memory_limit_bytes', { namespace: 'ml', pod, container: pod === '' ? '' : 'main', uuid: g.uuid });
      };
      expect(await limit('trainer')).toBe(8 * 1024 * MIB);
      expect(await limit('')).toBe(8 * 1024 * MIB);
      expect(await limit('elsewhere')).toBeUndefined();
      // The later claim's pod arrives on this node: the watch brings it to a next sample.
      api.seed('pods', podUsing('later', 'later-gpu', NODE));
      const deadline = Date.now() + 10_000;
      while ((await limit('later')) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await limit('later')).toBe(8 * 1024 * MIB);
      expect(await limit('')).toBeUndefined();
    } finally {
      await dra.close();
    }
  });
});
