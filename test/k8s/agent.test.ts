/**
 * The node agent against the fake API server, on the simulated GPU backend: one inventory
 * published both ways (the node-GPUs annotation and the ResourceSlices) with the same GPUs and
 * capacities, kept current when a GPU's health changes; the probe endpoint; a bad configuration
 * refused before anything starts.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1ResourceSlice } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/domain/gpu.js';
import type { GpuBackend } from '../../src/gpu/backend.js';
import { openBackend } from '../../src/gpu/open.js';
import { startNodeAgent, type NodeAgent } from '../../src/k8s/agent/agent.js';
import { deviceClassicPlugin } from '../../src/k8s/agent/classic.js';
import { StaticInventory } from '../../src/k8s/dra/kubelet-inventory.js';
import { layoutConfig } from '../../src/k8s/dra/slices.js';
import { resolveAgentConfig, type AgentFlags } from '../../src/k8s/agent/config.js';
import { CAPACITY } from '../../src/k8s/dra/names.js';
import { decodeNodeGpus, type NodeGpu } from '../../src/k8s/hami/node-gpus.js';
import { parseWholeQuantity } from '../../src/k8s/hami/quantity.js';
import { recordingLog } from './agent-fixtures.js';
import { FakeKubelet, podJson } from './device-plugin-fixtures.js';
import { startFakeApiServer, until, type FakeApiServer } from './fake-apiserver.js';
import { checkWire } from './typed.js';

const NODE = 'gpu-node-7';
const MIB = 2 ** 20;
let root = '';
let api: FakeApiServer;
let agent: NodeAgent | null = null;
const { log, lines } = recordingLog();

/** The simulated backend, with GPUs marked lost when a test says so. */
function backendWith(fleet: string, lost: Set<number>): GpuBackend {
  const { backend } = openBackend({ simulate: fleet });
  return { kind: backend.kind, description: backend.description, system: () => backend.system(), close: () => backend.close(), gpus: () => backend.gpus().map((g): Gpu => (lost.has(g.index) ? { ...g, health: 'lost' } : g)) };
}

function flags(over: AgentFlags = {}): AgentFlags {
  writeFileSync(join(root, 'libgpushare.so'), 'not really a library');
  return {
    nodeName: NODE, library: join(root, 'libgpushare.so'), pluginDir: join(root, 'plugins'), registryDir: join(root, 'registry'), cdiDir: join(root, 'cdi'), healthListen: '127.0.0.1:0', metricsListen: '127.0.0.1:0',
    ...over,
  };
}

async function start(backend: GpuBackend, over: AgentFlags = {}): Promise<NodeAgent> {
  const config = resolveAgentConfig(flags(over), {});
  agent = await startNodeAgent({ config: { ...config, pollMs: 0, suspend: { ...config.suspend, stateFile: join(root, 'agent', 'suspensions.json') } }, backend, kubeConfig: api.kubeConfig(), log, checkpoint: { ok: false, error: { message: 'none in this test' } }, deviceNode: (g) => `/dev/nvidia${g.index}` });
  return agent;
}

function annotationGpus(): NodeGpu[] {
  const node = checkWire<{ metadata?: { annotations?: Record<string, string> } }>({ ...api.object('nodes', NODE) }, 'V1Node');
  const r = decodeNodeGpus(node.metadata?.annotations?.['gpushare.io/node-gpus'] ?? '');
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.value;
}

function slices(): V1ResourceSlice[] {
  return api.objects('resourceslices').map((s) => checkWire<V1ResourceSlice>({ ...s, apiVersion: 'resource.k8s.io/v1', kind: 'ResourceSlice' }, 'V1ResourceSlice'));
}

/** Each published device's GPU uuid with the memory it publishes in all (the whole-GPU device, or the partitions of one count). */
function sliceMemoryByGpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of slices()) {
    for (const d of s.spec.devices ?? []) {
      const uuid = String(d.attributes?.['uuid']?.string ?? '');
      const q = parseWholeQuantity(d.capacity?.[CAPACITY.memory]?.value, 'memory');
      const memory = q.ok ? q.value : NaN;
      const parts = Number(/-part(\d+)-/.exec(d.name)?.[1] ?? 1);
      out.set(uuid, Math.max(out.get(uuid) ?? 0, memory * parts));
    }
  }
  return out;
}

function get(address: string, path: string): Promise<{ status: number; body: string }> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    request({ host, port, path }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject).end();
  });
}

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'gs-agent-'));
  api = await startFakeApiServer();
  api.seed('nodes', { metadata: { name: NODE, uid: 'node-uid-7', labels: { 'kubernetes.io/hostname': NODE } } });
  lines.length = 0;
});

afterEach(async () => {
  await agent?.close();
  agent = null;
  await api.close();
  rmSync(root, { recursive: true, force: true });
});

describe('the classic path inside the agent', () => {
  it('runs the device plugin on the same inventory: registered with the kubelet, the GPUs split, a decided pod allocated, stopped with the agent', async () => {
    mkdirSync(join(root, 'device-plugins'));
    const kubelet = new FakeKubelet(join(root, 'device-plugins'));
    await kubelet.start();
    try {
      const path = join(root, 'agent.json');
      writeFileSync(path, JSON.stringify({ classic: { enabled: true, split: 2, stateDir: join(root, 'dp'), deviceDir: join(root, 'device-plugins') } }));
      const a = await start(backendWith('2xH100-80GB', new Set()), { config: path });
      expect(kubelet.registrations.map((r) => [r.version, r.resource_name, r.endpoint])).toEqual([['v1beta1', 'nvidia.com/gpu', 'gpushare.sock']]);
      const uuids = annotationGpus().map((g) => g.uuid);
      const list = await until(() => kubelet.latest(), 5000, 'a device list');
      expect(list.map((d) => d.ID)).toEqual(uuids.flatMap((u) => [`${u}::0`, `${u}::1`]));
      expect(await get(a.health.address, '/readyz')).toEqual({ status: 200, body: '{"ok":true,"notReady":[]}\n' });
      // The compute boards are the DRA plugin's, so both paths' containers on a GPU share one.
      expect(existsSync(join(root, 'plugins', 'gpu.gpushare.io', 'compute'))).toBe(true);

      api.seed('pods', podJson({ name: 'p-1', uid: 'uid-1', node: NODE, containers: [{ gpus: 1, memoryMiB: 2048, cores: 25, decided: [uuids[1]!] }] }));
      const [response] = await kubelet.allocate([`${uuids[1]!}::0`]);
      expect(response?.envs['CUDA_DEVICE_MEMORY_LIMIT_0']).toBe('2048m');
      expect(response?.mounts.map((m) => m.host_path)).toContain(join(root, 'plugins', 'gpu.gpushare.io', 'compute'));
      expect(existsSync(join(root, 'dp', 'containers', 'uid-1_0'))).toBe(true);
      await a.close();
      agent = null;
      expect(existsSync(join(root, 'device-plugins', 'gpushare.sock'))).toBe(false);
    } finally {
      await kubelet.stop();
    }
  });
});

describe('deviceClassicPlugin', () => {
  it('says it is not ready until the kubelet takes its registration, and finds a served pod\'s regions by the pod\'s uid', async () => {
    mkdirSync(join(root, 'device-plugins'));
    writeFileSync(join(root, 'libgpushare.so'), 'not really a library');
    const kubelet = new FakeKubelet(join(root, 'device-plugins'));
    const gpus = openBackend({ simulate: '1xH100-80GB' }).backend.gpus();
    const start = deviceClassicPlugin({ split: 2, stateDir: join(root, 'dp'), deviceDir: join(root, 'device-plugins') });
    const plugin = await start({ nodeName: NODE, kubeConfig: api.kubeConfig(), inventory: new StaticInventory(gpus), layout: layoutConfig({ layout: 'consumable' }), log, library: join(root, 'libgpushare.so'), deviceNode: () => '/dev/nvidia0' });
    try {
      expect(plugin.notReady()).toMatch(/has not registered with the kubelet yet|could not register with the kubelet/);
      await kubelet.start();
      await until(() => (plugin.notReady() === null ? true : undefined), 10_000, 'a registration');
      api.seed('pods', podJson({ name: 'p-2', uid: 'uid-2', node: NODE, containers: [{ gpus: 1, decided: [gpus[0]!.uuid] }, { gpus: 1, decided: [gpus[0]!.uuid] }] }));
      await kubelet.allocate([`${gpus[0]!.uuid}::0`]);
      await kubelet.allocate([`${gpus[0]!.uuid}::1`]);
      expect(plugin.regionsOf({ metadata: { uid: 'uid-2' } })).toEqual([join(root, 'dp', 'containers', 'uid-2_0', 'region'), join(root, 'dp', 'containers', 'uid-2_1', 'region')]);
      expect(plugin.regionsOf({ metadata: { uid: 'uid-3' } })).toEqual([]);
      expect(plugin.regionsOf({})).toEqual([]);
    } finally {
      await plugin.close();
      await kubelet.stop();
    }
  });
});

describe('one inventory, published both ways', () => {
  it.each(['consumable', 'fixed'])('start publishes the same GPUs with the same capacities in the annotation and the %s ResourceSlices', async (layout) => {
    const a = await start(backendWith('2xH100-80GB', new Set()), { layout });
    const gpus = annotationGpus();
    expect(gpus.map((g) => [g.index, g.health])).toEqual([[0, 'ok'], [1, 'ok']]);
    const published = sliceMemoryByGpu();
    expect([...published.keys()].sort()).toEqual(gpus.map((g) => g.uuid).sort());
    for (const g of gpus) expect(published.get(g.uuid)).toBe(g.memoryMiB * MIB);
    // The slices are the Node's (they go when it goes) and name the node's pool.
    for (const s of slices()) {
      expect(s.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Node', name: NODE, uid: 'node-uid-7' });
      expect(s.spec.pool.name).toBe(NODE);
    }
    // Only the annotation was written on the Node, by a merge patch.
    const nodeWrites = api.writes('nodes');
    expect(nodeWrites.map((w) => [w.verb, w.contentType])).toEqual([['patch', 'application/merge-patch+json']]);
    expect(api.object('nodes', NODE)?.metadata.labels).toEqual({ 'kubernetes.io/hostname': NODE });
    // The DRA plugin serves on the kubelet's paths from the configuration.
    expect(readdirSync(join(root, 'registry'))).toEqual(['gpu.gpushare.io-reg.sock']);
    expect(a.draPlugin?.pluginSocket).toBe(join(root, 'plugins', 'gpu.gpushare.io', 'dra.sock'));
    expect(lines.some((l) => l.fields['event'] === 'agent.started')).toBe(true);
  });

  it('a GPU going unhealthy leaves the slices and is marked lost in the annotation; back, it returns to both', async () => {
    const lost = new Set<number>();
    const a = await start(backendWith('2xH100-80GB', lost));
    const [g0, g1] = annotationGpus();
    lost.add(1);
    a.poll();
    await a.settled();
    expect(annotationGpus().map((g) => g.health)).toEqual(['ok', 'lost']);
    expect([...sliceMemoryByGpu().keys()]).toEqual([g0?.uuid]);
    lost.delete(1);
    a.poll();
    await a.settled();
    expect(annotationGpus().map((g) => g.health)).toEqual(['ok', 'ok']);
    expect([...sliceMemoryByGpu().keys()].sort()).toEqual([g0?.uuid, g1?.uuid].sort());
    // Nothing changed: no poll writes anything.
    const before = api.writes().length;
    a.poll();
    await a.settled();
    expect(api.writes().length).toBe(before);
  });

  it('retries the annotation when the API server fails it, and is ready only once both are published', async () => {
    api.failNext({ verb: 'patch', resource: 'nodes' }, { code: 503 }, 2);
    const a = await start(backendWith('1xH100-80GB', new Set()));
    expect(annotationGpus()).toHaveLength(1);
    expect(lines.filter((l) => l.fields['event'] === 'agent.node-gpus.retry')).toHaveLength(2);
    expect(await get(a.health.address, '/readyz')).toEqual({ status: 200, body: '{"ok":true,"notReady":[]}\n' });
    expect((await get(a.health.address, '/healthz')).status).toBe(200);
    expect((await get(a.health.address, '/metrics')).status).toBe(404);
  });
});

describe('a bad configuration: a clear error, nothing started', () => {
  it.each<[string, AgentFlags, Record<string, string>, RegExp]>([
    ['no node name', { nodeName: undefined }, {}, /no node name: pass --node-name.*NODE_NAME/],
    ['a node name Kubernetes refuses', { nodeName: 'GPU_Node' }, {}, /"GPU_Node" is not a Kubernetes node name/],
    ['an unknown layout', { layout: 'striped' }, {}, /layout: slice layout 'striped' is not known: accepted are consumable, fixed/],
    ['a relative plugin directory', { pluginDir: 'plugins' }, {}, /--plugin-dir "plugins" must be an absolute path/],
    ['a health address that is neither', { healthListen: 'localhost' }, {}, /health listen address "localhost" is neither host:port/],
    ['a metrics address that is neither', { metricsListen: ':9394' }, {}, /metrics listen address ":9394" is neither host:port/],
  ])('%s', (_what, over, env, message) => {
    expect(() => resolveAgentConfig({ ...flags(), ...over }, env)).toThrow(message);
  });

  it('NODE_NAME from the environment, as a DaemonSet passes it', () => {
    expect(resolveAgentConfig({ ...flags(), nodeName: undefined }, { NODE_NAME: 'gpu-3' }).nodeName).toBe('gpu-3');
  });

  it('a config file with an unknown or mistyped field names it', () => {
    const path = join(root, 'agent.json');
    writeFileSync(path, JSON.stringify({ layout: { layout: 'fixed', partitions: [2, 4] }, suspend: { evictOnFailur: true } }));
    expect(() => resolveAgentConfig({ ...flags(), config: path }, {})).toThrow(/config file .*agent\.json: suspend: Unrecognized key: "evictOnFailur"/);
    writeFileSync(path, JSON.stringify({ pollMs: 'often' }));
    expect(() => resolveAgentConfig({ ...flags(), config: path }, {})).toThrow(/pollMs: Invalid input: expected number/);
    writeFileSync(path, JSON.stringify({ layout: { layout: 'fixed', partitions: [3, 3] }, classic: { enabled: true } }));
    expect(() => resolveAgentConfig({ ...flags(), config: path }, {})).toThrow(/layout: partitions \[3, 3\] name a count twice/);
  });

  it.each<[string, () => Promise<unknown>, RegExp]>([
    ['a node the cluster does not have', () => start(backendWith('1xH100-80GB', new Set()), { nodeName: 'gpu-node-8' }), /node gpu-node-8 does not exist in the cluster/],
    ['GPUs the layout cannot publish', () => start(backendWith('1xT4-16GB', new Set()), { config: (() => {
      const path = join(root, 'agent.json');
      writeFileSync(path, JSON.stringify({ layout: { layout: 'consumable', memoryStepBytes: 16 * 1024 * MIB } }));
      return path;
    })() }), /less than two memory steps/],
  ])('%s: refused, with nothing written and no socket left', async (_what, run, message) => {
    await expect(run()).rejects.toThrow(message);
    expect(api.writes()).toEqual([]);
    for (const dir of ['registry', 'plugins', 'cdi']) expect(() => readdirSync(join(root, dir))).toThrow(/ENOENT/);
  });

  it('an API server that answers nothing: refused with the reason, nothing left running', async () => {
    const config = resolveAgentConfig(flags(), {});
    await api.close(); // its address now refuses connections
    await expect(startNodeAgent({ config, backend: backendWith('1xH100-80GB', new Set()), kubeConfig: api.kubeConfig(), log, checkpoint: { ok: false, error: { message: '-' } } })).rejects.toThrow(/cannot read node gpu-node-7 from the API server/);
    api = await startFakeApiServer(); // for afterEach
  });
});
