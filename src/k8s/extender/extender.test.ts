import type { V1Node, V1Pod } from '@kubernetes/client-node';
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryApi, MIB, gpuNode, gpuPod } from '../../../test/k8s/extender-memory-api.js';
import { decodeDecision } from '../hami/decision.js';
import { Extender, type ExtenderOptions } from './extender.js';
import { registerExtenderRoutes } from './server.js';
import type { ExtenderFilterResult, HostPriority } from './wire.js';

const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(`../../../test/k8s/fixtures/${name}`, import.meta.url), 'utf8'));
const NOW = 1_796_000_000_000;

/** Binds `pod` through the extender and shows the watch the result, as the API server would. */
async function bindAndWatch(ext: Extender, api: MemoryApi, pod: V1Pod, node: string): Promise<string> {
  const r = await ext.bind({ PodName: pod.metadata!.name!, PodNamespace: pod.metadata!.namespace!, PodUID: pod.metadata!.uid!, Node: node });
  await ext.observePod(await api.getPod({ namespace: pod.metadata!.namespace!, name: pod.metadata!.name! }));
  return r.Error;
}

function decisionOf(api: MemoryApi, pod: V1Pod) {
  const stored = api.pods.get(`${pod.metadata!.namespace}/${pod.metadata!.name}`);
  const d = decodeDecision(stored?.metadata?.annotations?.['gpushare.io/decision'] ?? '');
  if (!d.ok) throw new Error('no decision recorded');
  return d.value;
}

/** An extender over an in-memory API server (`delayMs`: each call waits up to that long) with `nodes` in its view. */
function setup(nodes: V1Node[], options: ExtenderOptions = {}, delayMs = 0): { api: MemoryApi; ext: Extender } {
  const api = new MemoryApi(delayMs);
  const ext = new Extender(api, { now: () => NOW, ...options });
  for (const n of nodes) ext.view.observeNode(n);
  return { api, ext };
}

const apps: ReturnType<typeof Fastify>[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

function app(ext: Extender) {
  const a = Fastify();
  registerExtenderRoutes(a, ext);
  apps.push(a);
  return a;
}

describe('filter: every feasible node, and why each other one is not', () => {
  async function cluster() {
    const { api, ext } = setup([gpuNode('gpu-a', 8), gpuNode('gpu-b', 1), gpuNode('gpu-c', 8, { model: 'A100-80GB' }), { metadata: { name: 'cpu-1' } }]);
    // gpu-b's one GPU holds 70,000 MiB of another pod.
    const other = api.add(gpuPod('other', { 'nvidia.com/gpumem': '70000' }));
    expect(await bindAndWatch(ext, api, other, 'gpu-b')).toBe('');
    return { api, ext };
  }

  it('answers the kube-scheduler body in extender/v1 JSON', async () => {
    const { ext } = await cluster();
    const res = await app(ext).inject({ method: 'POST', url: '/gpushare-scheduler/filter', payload: fixture('extender-filter-args.json') as object });
    expect(res.statusCode).toBe(200);
    const body = res.json<ExtenderFilterResult>();
    expect(Object.keys(body)).toEqual(['Nodes', 'NodeNames', 'FailedNodes', 'FailedAndUnresolvableNodes', 'Error']);
    expect(body.NodeNames).toEqual(['gpu-a']);
    expect(body.Error).toBe('');
    // gpu-b is full now, but would take it empty: preemption may help.
    expect(body.FailedNodes['gpu-b']).toBe('gpushare: 0 of the 1 GPU(s) asked can take it: GPU 0: 11.6 GiB free, 19.5 GiB asked');
    expect(Object.keys(body.FailedNodes)).toEqual(['gpu-b']);
    expect(body.FailedAndUnresolvableNodes['gpu-c']).toBe('gpushare: 0 of the 1 GPU(s) asked can take it: GPUs 0-7: is a A100-80GB, not a selected model');
    expect(body.FailedAndUnresolvableNodes['cpu-1']).toMatch(/no GPUs gpushare schedules/);
  });

  it('with Nodes (not nodeCacheCapable) it returns the Node objects that pass', async () => {
    const { ext } = await cluster();
    const args = fixture('extender-filter-args.json') as Record<string, unknown>;
    const items = ['gpu-a', 'gpu-c'].map((name) => ({ metadata: { name, labels: { zone: 'z1' } }, status: { allocatable: { 'nvidia.com/gpu': '80' } } }));
    const res = await app(ext).inject({ method: 'POST', url: '/gpushare-scheduler/filter', payload: { ...args, NodeNames: null, Nodes: { items } } });
    const body = res.json<ExtenderFilterResult>();
    expect(body.NodeNames).toBeNull();
    expect(body.Nodes?.items).toEqual([items[0]]);
  });

  it('a pod without GPUs passes everywhere', async () => {
    const { ext } = await cluster();
    const pod = gpuPod('web', { cpu: '1' });
    const r = ext.filter({ Pod: pod as never, NodeNames: ['gpu-a', 'cpu-1'] });
    expect(r.NodeNames).toEqual(['gpu-a', 'cpu-1']);
  });

  it('a malformed pod: every node unresolvable, with what was wrong', async () => {
    const { ext } = await cluster();
    const pod = gpuPod('bad', { 'nvidia.com/gpu': '1' }, { annotations: { 'hami.io/gpu-scheduler-policy': 'fastest' } });
    const r = ext.filter({ Pod: pod as never, NodeNames: ['gpu-a', 'gpu-b'] });
    expect(r.NodeNames).toEqual([]);
    expect(r.FailedAndUnresolvableNodes['gpu-a']).toMatch(/hami.io\/gpu-scheduler-policy: is "fastest"; expected binpack or spread/);
  });

  it('an invalid inventory annotation is named', async () => {
    const { ext } = await cluster();
    ext.view.observeNode({ metadata: { name: 'gpu-d', annotations: { 'gpushare.io/node-gpus': '{"v":1,"gpus":[{}]}' } } });
    const r = ext.filter({ Pod: gpuPod('p', { 'nvidia.com/gpu': '1' }) as never, NodeNames: ['gpu-d'] });
    expect(r.FailedAndUnresolvableNodes['gpu-d']).toMatch(/gpushare.io\/node-gpus is invalid: .*gpus.0/);
  });

  it.each([
    ['no Pod', { NodeNames: ['a'] }, /Pod/],
    ['containers not a list', { Pod: { metadata: {}, spec: { containers: 'x' } }, NodeNames: [] }, /Pod.spec.containers/],
    ['NodeNames not strings', { Pod: gpuPod('p', {}), NodeNames: [1] }, /NodeNames/],
  ])('a body that is not ExtenderArgs (%s): 400 with Error', async (_n, payload, message) => {
    const { ext } = await cluster();
    const res = await app(ext).inject({ method: 'POST', url: '/gpushare-scheduler/filter', payload });
    expect(res.statusCode).toBe(400);
    expect(res.json<ExtenderFilterResult>().Error).toMatch(message);
  });
});

describe('prioritize: the engine scores as 0..10', () => {
  async function twoNodes() {
    const { api, ext } = setup([gpuNode('busy', 2), gpuNode('idle', 2), gpuNode('half', 2)]);
    for (let i = 0; i < 3; i++) expect(await bindAndWatch(ext, api, api.add(gpuPod(`b${i}`, { 'nvidia.com/gpumem': '20000', 'nvidia.com/gpucores': '25' })), 'busy')).toBe('');
    expect(await bindAndWatch(ext, api, api.add(gpuPod('h0', { 'nvidia.com/gpumem': '20000', 'nvidia.com/gpucores': '25' })), 'half')).toBe('');
    return ext;
  }
  const score = (list: HostPriority[], host: string) => list.find((h) => h.Host === host)?.Score;

  it('binpack (HAMi default): the busiest node gets 10, the idlest 0', async () => {
    const ext = await twoNodes();
    const pod = gpuPod('new', { 'nvidia.com/gpumem': '10000', 'nvidia.com/gpucores': '10' });
    const list = ext.prioritize({ Pod: pod as never, NodeNames: ['busy', 'idle', 'half'] });
    expect(score(list, 'busy')).toBe(10);
    expect(score(list, 'idle')).toBe(0);
    expect(score(list, 'half')).toBeGreaterThan(0);
    expect(score(list, 'half')).toBeLessThan(10);
  });

  it('hami.io/node-scheduler-policy: spread turns it around', async () => {
    const ext = await twoNodes();
    const pod = gpuPod('new', { 'nvidia.com/gpumem': '10000', 'nvidia.com/gpucores': '10' }, { annotations: { 'hami.io/node-scheduler-policy': 'spread' } });
    const list = ext.prioritize({ Pod: pod as never, NodeNames: ['busy', 'idle'] });
    expect(list).toEqual([{ Host: 'busy', Score: 0 }, { Host: 'idle', Score: 10 }]);
  });

  it('over HTTP, a HostPriorityList', async () => {
    const ext = await twoNodes();
    const res = await app(ext).inject({ method: 'POST', url: '/gpushare-scheduler/prioritize', payload: { Pod: gpuPod('new', { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '1000' }), NodeNames: ['busy', 'nowhere'] } });
    expect(res.json()).toEqual([{ Host: 'busy', Score: 10 }, { Host: 'nowhere', Score: 0 }]);
  });
});

describe('bind: decision recorded, then bound; idempotent; no double placement', () => {
  it('records which GPU and how much, then binds', async () => {
    const { api, ext } = setup([gpuNode('n1', 2)]);
    const pod = api.add(gpuPod('p', { 'nvidia.com/gpumem': '4096', 'nvidia.com/gpucores': '30', 'nvidia.com/priority': '0' }));
    expect(await bindAndWatch(ext, api, pod, 'n1')).toBe('');
    expect(api.pods.get('default/p')?.spec?.nodeName).toBe('n1');
    expect(decisionOf(api, pod)).toEqual({
      v: 1,
      podUid: 'uid-p',
      node: 'n1',
      decidedAtMs: NOW,
      containers: [{ name: 'main', index: 0, taskPriority: 0, exclusive: false, gpus: [{ uuid: 'GPU-n1-0', index: 0, memoryBytes: 4096 * MIB, coresPercent: 30, computeMilli: 300 }] }],
    });
  });

  it('hami.io/gpu-scheduler-policy: spread (default) takes the idle GPU, binpack the busy one', async () => {
    const { api, ext } = setup([gpuNode('n1', 2)]);
    expect(await bindAndWatch(ext, api, api.add(gpuPod('first', { 'nvidia.com/gpumem': '1000' })), 'n1')).toBe('');
    const first = decisionOf(api, { metadata: { name: 'first', namespace: 'default' } }).containers[0]!.gpus[0]!.index;
    const spread = api.add(gpuPod('spread', { 'nvidia.com/gpumem': '1000' }));
    const pack = api.add(gpuPod('pack', { 'nvidia.com/gpumem': '1000' }, { annotations: { 'hami.io/gpu-scheduler-policy': 'binpack' } }));
    expect(await bindAndWatch(ext, api, spread, 'n1')).toBe('');
    expect(await bindAndWatch(ext, api, pack, 'n1')).toBe('');
    expect(decisionOf(api, spread).containers[0]!.gpus[0]!.index).not.toBe(first);
    expect(decisionOf(api, pack).containers[0]!.gpus[0]!.index).toBe(first);
  });

  it('a retry after a failed Binding gets the same decision and reserves nothing twice', async () => {
    const { api, ext } = setup([gpuNode('n1', 1)]);
    const pod = api.add(gpuPod('p', { 'nvidia.com/gpumem': '40960' }));
    api.failBinds = { count: 1, status: 500 };
    const args = { PodName: 'p', PodNamespace: 'default', PodUID: 'uid-p', Node: 'n1' };
    expect((await ext.bind(args)).Error).toMatch(/binding pod default\/p to n1 failed: injected failure \(decision recorded: GPU-n1-0\)/);
    const first = decisionOf(api, pod);
    // Nothing held while the pod is unbound: another pod could have the room.
    expect(ext.view.snapshot().nodes[0]?.gpuMemoryFree[0]).toBe(81920 * MIB);
    expect((await ext.bind(args)).Error).toBe('');
    expect(decisionOf(api, pod)).toEqual(first);
    // Once more (the kube-scheduler did not hear the answer): still bound, nothing new written.
    const patches = api.calls.patch;
    expect((await ext.bind(args)).Error).toBe('');
    expect(api.calls.patch).toBe(patches);
    await ext.observePod(await api.getPod({ namespace: 'default', name: 'p' }));
    expect(ext.view.snapshot().nodes[0]?.gpuMemoryFree[0]).toBe((81920 - 40960) * MIB);
  });

  it('concurrent binds of one pod share one attempt', async () => {
    const { api, ext } = setup([gpuNode('n1', 1)], {}, 3);
    api.add(gpuPod('p', { 'nvidia.com/gpumem': '1000' }));
    const args = { PodName: 'p', PodNamespace: 'default', PodUID: 'uid-p', Node: 'n1' };
    const results = await Promise.all([ext.bind(args), ext.bind(args), ext.bind(args)]);
    expect(results.map((r) => r.Error)).toEqual(['', '', '']);
    expect(api.calls.bind).toBe(1);
  });

  it.each([
    [50, 50],
    [80, 64],
  ])('%i pods bound at once to one node of 8 GPUs (room for 64): %i bound, none double-placed', async (pods, fit) => {
    const { api, ext } = setup([gpuNode('n1', 8)], {}, 5);
    const all = Array.from({ length: pods }, (_, i) => api.add(gpuPod(`p${i}`, { 'nvidia.com/gpumem': '10240', 'nvidia.com/gpucores': '12' })));
    const errors = await Promise.all(all.map((p) => ext.bind({ PodName: p.metadata!.name!, PodNamespace: 'default', PodUID: p.metadata!.uid!, Node: 'n1' }).then((r) => r.Error)));
    const bound = all.filter((_, i) => errors[i] === '');
    expect(bound.length).toBe(fit);
    for (const e of errors.filter((x) => x !== '')) expect(e).toMatch(/node n1 cannot take pod default\/p\d+ now: 0 of the 1 GPU\(s\) asked can take it: GPUs 0-7: at most 0 B free, 10 GiB asked$/);
    const perGpu = new Map<string, { mem: number; cores: number }>();
    for (const p of bound) {
      expect(api.pods.get(`default/${p.metadata!.name}`)?.spec?.nodeName).toBe('n1');
      for (const g of decisionOf(api, p).containers[0]!.gpus) {
        const u = perGpu.get(g.uuid) ?? { mem: 0, cores: 0 };
        perGpu.set(g.uuid, { mem: u.mem + g.memoryBytes, cores: u.cores + g.computeMilli });
      }
    }
    for (const u of perGpu.values()) {
      expect(u.mem).toBeLessThanOrEqual(81920 * MIB);
      expect(u.cores).toBeLessThanOrEqual(1000);
    }
    // Refused pods hold nothing: the node's free memory is exactly what the bound pods left.
    const node = ext.view.snapshot().nodes[0]!;
    expect(node.gpuMemoryFree.reduce((a, b) => a + b, 0)).toBe(8 * 81920 * MIB - fit * 10240 * MIB);
  });

  it.each([
    ['a replaced pod', { PodUID: 'uid-other' }, /was replaced/],
    ['a missing pod', { PodName: 'ghost', PodUID: 'uid-ghost' }, /cannot read pod default\/ghost: pods "ghost" not found/],
    ['a node without GPUs', { Node: 'cpu-1' }, /node cpu-1 cannot take pod default\/p now: .*no GPUs gpushare schedules/],
  ])('refuses %s and reserves nothing', async (_n, over, message) => {
    const { api, ext } = setup([gpuNode('n1', 1)]);
    api.add(gpuPod('p', { 'nvidia.com/gpumem': '1000' }));
    const r = await ext.bind({ PodName: 'p', PodNamespace: 'default', PodUID: 'uid-p', Node: 'n1', ...over });
    expect(r.Error).toMatch(message);
    expect(ext.view.snapshot().nodes[0]?.gpuMemoryFree[0]).toBe(81920 * MIB);
    expect(api.calls.bind).toBe(0);
  });

  it('a bad bind body: 400 with Error', async () => {
    const res = await app(new Extender(new MemoryApi())).inject({ method: 'POST', url: '/gpushare-scheduler/bind', payload: { PodName: 'p', PodNamespace: 'default', Node: 'n1' } });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ Error: string }>().Error).toMatch(/bind request is not extender\/v1 JSON: PodUID/);
  });
});

describe('preempt: the engine chooses victims, suspending where the policy allows', () => {
  it('suspends the batch namespace, evicts the rest only when needed', async () => {
    const { api, ext } = setup([gpuNode('n1', 1), gpuNode('n2', 1)], { suspend: { namespaces: ['batch'] } });
    // n1: two suspendable batch pods and one web pod, 24 GiB each, priority 0.
    const victims = [gpuPod('b1', { 'nvidia.com/gpumem': '24576' }, { namespace: 'batch' }), gpuPod('b2', { 'nvidia.com/gpumem': '24576' }, { namespace: 'batch' }), gpuPod('w1', { 'nvidia.com/gpumem': '24576' })];
    for (const v of victims) expect(await bindAndWatch(ext, api, api.add(v), 'n1')).toBe('');
    // n2: one pod of higher priority than the preemptor: nothing to take there.
    expect(await bindAndWatch(ext, api, api.add(gpuPod('vip', { 'nvidia.com/gpumem': '70000' }, { priority: 2000 })), 'n2')).toBe('');
    const preemptor = api.add(gpuPod('urgent', { 'nvidia.com/gpumem': '40000' }, { priority: 1000 }));
    const cpuVictim = { UID: 'uid-cpu-only' };
    const res = await app(ext).inject({
      method: 'POST',
      url: '/gpushare-scheduler/preempt',
      payload: { Pod: preemptor, NodeNameToMetaVictims: { n1: { Pods: [{ UID: 'uid-w1' }, cpuVictim], NumPDBViolations: 0 }, n2: { Pods: [{ UID: 'uid-vip' }], NumPDBViolations: 1 } } },
    });
    expect(res.statusCode).toBe(200);
    // n1: 40,000 MiB needs two of the three 24 GiB pods gone: the two batch ones are suspended
    // (not returned), w1 stays; the CPU-only victim the kube-scheduler chose stays a victim.
    expect(res.json()).toEqual({ NodeNameToMetaVictims: { n1: { Pods: [cpuVictim], NumPDBViolations: 0 } } });
    const record = ext.preemptions.get('uid-urgent')?.[0];
    expect(record?.suspend.map((s) => s.name).sort()).toEqual(['b1', 'b2']);
    // The kube-scheduler nominates n1: the suspensions are asked of the victims.
    await ext.observePod({ ...preemptor, status: { phase: 'Pending', nominatedNodeName: 'n1' } });
    for (const name of ['b1', 'b2']) expect(JSON.parse(api.pods.get(`batch/${name}`)?.metadata?.annotations?.['gpushare.io/suspend-request'] ?? '{}')).toEqual({ v: 1, preemptor: 'uid-urgent', node: 'n1', atMs: NOW });
    expect(api.pods.get('default/w1')?.metadata?.annotations?.['gpushare.io/suspend-request']).toBeUndefined();
  });

  it('without a suspend policy the same victims are evicted', async () => {
    const { api, ext } = setup([gpuNode('n1', 1)]);
    for (const v of ['a', 'b', 'c']) expect(await bindAndWatch(ext, api, api.add(gpuPod(v, { 'nvidia.com/gpumem': '24576' })), 'n1')).toBe('');
    const r = ext.preempt({ Pod: gpuPod('urgent', { 'nvidia.com/gpumem': '40000' }, { priority: 1000 }) as never, NodeNameToMetaVictims: { n1: { Pods: [], NumPDBViolations: 0 } } });
    expect(r.NodeNameToMetaVictims.n1?.Pods.length).toBe(2);
  });
});
