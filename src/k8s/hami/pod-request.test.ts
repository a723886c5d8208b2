import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { decodeDecision, encodeDecision, type PodDecision } from './decision.js';
import { decodeNodeGpus, encodeNodeGpus, gpuSpecOf } from './node-gpus.js';
import { asksForGpus, parsePodGpuRequest } from './pod-request.js';
import { parseWholeQuantity } from './quantity.js';

const MIB = 2 ** 20;

function pod(limits: Record<string, string>, annotations: Record<string, string> = {}, extra: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'train', namespace: 'ml', uid: 'uid-1', annotations },
    spec: { containers: [{ name: 'main', image: 'pytorch', resources: { limits } }], ...extra },
  };
}

function issuesOf(p: V1Pod): string {
  const r = parsePodGpuRequest(p);
  if (r.ok) throw new Error('expected a refusal');
  return r.issues.map((i) => `${i.field}: ${i.message}`).join('\n');
}

describe('parseWholeQuantity: Kubernetes quantities as whole numbers', () => {
  it.each([
    ['3000', 3000],
    ['10k', 10_000],
    ['1Ki', 1024],
    ['2e3', 2000],
    ['1500m', NaN],
    ['1.5k', 1500],
    [4, 4],
  ] as const)('%s -> %s', (text, want) => {
    const r = parseWholeQuantity(text, 'x');
    if (Number.isNaN(want)) expect(r.ok).toBe(false);
    else expect(r).toEqual({ ok: true, value: want });
  });
  it.each(['', 'abc', '-1', '1.5', '10 k', '1Gb'])('refuses %j', (text) => {
    const r = parseWholeQuantity(text, 'nvidia.com/gpumem');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]?.message).toMatch(/expected a whole number/);
  });
});

describe('parsePodGpuRequest: HAMi pod specs', () => {
  it('no nvidia.com resource: not a GPU pod', () => {
    const p = pod({ cpu: '2', memory: '4Gi' });
    expect(asksForGpus(p)).toBe(false);
    expect(parsePodGpuRequest(p)).toEqual({ ok: true, value: null });
  });

  it('count alone: the whole GPU (HAMi default 100% memory, no core limit)', () => {
    const r = parsePodGpuRequest(pod({ 'nvidia.com/gpu': '2' }));
    if (!r.ok || !r.value) throw new Error('refused');
    const c = r.value.containers[0];
    expect(c?.slice).toMatchObject({ gpus: 2, memory: null, compute: null, isolation: 'time-slice' });
    expect(c?.taskPriority).toBe(1);
    expect(r.value).toMatchObject({ nodePolicy: 'binpack', gpuPolicy: 'spread', priority: 0 });
  });

  it('gpumem (MiB, canonical 10k) and gpucores', () => {
    const r = parsePodGpuRequest(pod({ 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '10k', 'nvidia.com/gpucores': '30', 'nvidia.com/priority': '0' }));
    if (!r.ok || !r.value) throw new Error('refused');
    expect(r.value.containers[0]?.slice).toMatchObject({ gpus: 1, memory: { kind: 'bytes', bytes: 10_000 * MIB }, compute: 0.3 });
    expect(r.value.containers[0]).toMatchObject({ memoryMiB: 10_000, coresPercent: 30, taskPriority: 0 });
  });

  it('gpumem-percentage, no count: one GPU (HAMi defaultGPUNum)', () => {
    const r = parsePodGpuRequest(pod({ 'nvidia.com/gpumem-percentage': '25' }));
    if (!r.ok || !r.value) throw new Error('refused');
    expect(r.value.containers[0]?.slice).toMatchObject({ gpus: 1, memory: { kind: 'fraction', fraction: 0.25 }, compute: null });
  });

  it('gpucores 100: the GPU alone', () => {
    const r = parsePodGpuRequest(pod({ 'nvidia.com/gpu': '1', 'nvidia.com/gpucores': '100' }));
    if (!r.ok || !r.value) throw new Error('refused');
    expect(r.value.containers[0]?.slice.isolation).toBe('exclusive');
  });

  it('annotations: types, UUIDs, policies, and the pod priority', () => {
    const r = parsePodGpuRequest(
      pod(
        { 'nvidia.com/gpu': '1' },
        { 'nvidia.com/use-gputype': 'A100, H100', 'nvidia.com/nouse-gpuuuid': 'GPU-abc', 'hami.io/node-scheduler-policy': 'spread', 'hami.io/gpu-scheduler-policy': 'binpack' },
        { priority: 1000, priorityClassName: 'high' },
      ),
    );
    if (!r.ok || !r.value) throw new Error('refused');
    expect(r.value.containers[0]?.slice).toMatchObject({ models: { include: ['A100', 'H100'], exclude: [] }, uuids: { include: [], exclude: ['GPU-abc'] }, priority: 1000 });
    expect(r.value).toMatchObject({ nodePolicy: 'spread', gpuPolicy: 'binpack', priorityClassName: 'high' });
  });

  it('requests equal to limits are fine; requests alone count', () => {
    const p = pod({ 'nvidia.com/gpu': '1' });
    p.spec!.containers[0]!.resources!.requests = { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '2048' };
    const r = parsePodGpuRequest(p);
    if (!r.ok || !r.value) throw new Error('refused');
    expect(r.value.containers[0]?.memoryMiB).toBe(2048);
  });

  it.each([
    ['an unknown nvidia.com resource', pod({ 'nvidia.com/gpumemory': '1000' }), /nvidia.com\/gpumemory.*not a resource gpushare knows.*nvidia.com\/gpumem/],
    ['MiB and percentage both', pod({ 'nvidia.com/gpumem': '1000', 'nvidia.com/gpumem-percentage': '50' }), /both set/],
    ['a percentage over 100', pod({ 'nvidia.com/gpumem-percentage': '150' }), /from 1 to 100/],
    ['cores over 100', pod({ 'nvidia.com/gpucores': '101' }), /from 0 to 100/],
    ['a malformed quantity', pod({ 'nvidia.com/gpumem': 'lots' }), /not a Kubernetes quantity/],
    ['count 0 with memory', pod({ 'nvidia.com/gpu': '0', 'nvidia.com/gpumem': '100' }), /is 0 but/],
    ['priority without a GPU', pod({ 'nvidia.com/priority': '0' }), /asks for no GPU/],
    ['priority 2', pod({ 'nvidia.com/gpu': '1', 'nvidia.com/priority': '2' }), /0 \(high\) or 1 \(low\)/],
    ['a bad policy', pod({ 'nvidia.com/gpu': '1' }, { 'hami.io/node-scheduler-policy': 'pack' }), /expected binpack or spread/],
    ['an empty type list', pod({ 'nvidia.com/gpu': '1' }, { 'nvidia.com/use-gputype': ' , ' }), /is empty/],
    ['a malformed UUID', pod({ 'nvidia.com/gpu': '1' }, { 'nvidia.com/use-gpuuuid': 'GPU-1,not a uuid' }), /"not a uuid"/],
    ['use and nouse of one type', pod({ 'nvidia.com/gpu': '1' }, { 'nvidia.com/use-gputype': 'A100', 'nvidia.com/nouse-gputype': 'a100' }), /both name "A100"/],
    ['fewer UUIDs than GPUs', pod({ 'nvidia.com/gpu': '2' }, { 'nvidia.com/use-gpuuuid': 'GPU-1' }), /lists 1 GPU UUID/],
  ])('refuses %s', (_name, p, message) => {
    expect(issuesOf(p)).toMatch(message);
  });

  it('a request different from its limit is refused', () => {
    const p = pod({ 'nvidia.com/gpumem': '1000' });
    p.spec!.containers[0]!.resources!.requests = { 'nvidia.com/gpumem': '2000' };
    expect(issuesOf(p)).toMatch(/requests 2000 but limits 1000/);
  });

  it('GPU resources on an init container are refused', () => {
    const p = pod({ 'nvidia.com/gpu': '1' });
    p.spec!.initContainers = [{ name: 'init', resources: { limits: { 'nvidia.com/gpu': '1' } } }];
    expect(issuesOf(p)).toMatch(/init containers/);
  });

  it('reports every problem at once', () => {
    const r = parsePodGpuRequest(pod({ 'nvidia.com/gpumem': 'x', 'nvidia.com/gpucores': '500' }, { 'hami.io/gpu-scheduler-policy': '?' }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.length).toBe(3);
  });
});

describe('codecs', () => {
  const gpus = [
    { index: 0, uuid: 'GPU-aaaa', model: 'H100-80GB', name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, health: 'ok' as const, numaNode: 0 },
    { index: 1, uuid: 'GPU-bbbb', model: 'H100-80GB', name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, health: 'lost' as const, numaNode: null },
  ];
  it('node GPUs round-trip into scheduler GPUs', () => {
    const r = decodeNodeGpus(encodeNodeGpus(gpus));
    expect(r).toEqual({ ok: true, value: gpus });
    expect(gpuSpecOf(gpus[0]!)).toMatchObject({ memoryBytes: 81559 * MIB, computeMilli: 1000, health: 'ok', mig: null });
  });
  it.each([
    ['not JSON', '{', /not JSON/],
    ['another version', JSON.stringify({ v: 2, gpus: [] }), /v/],
    ['indexes out of order', encodeNodeGpus([gpus[1]!, gpus[0]!]), /index order/],
    ['a duplicate UUID', encodeNodeGpus([gpus[0]!, { ...gpus[1]!, uuid: 'GPU-aaaa' }]), /twice/],
    ['an unknown field', JSON.stringify({ v: 1, gpus: [{ ...gpus[0], cores: 5 }] }), /gpus.0/],
  ])('node GPUs: refuses %s', (_n, text, message) => {
    const r = decodeNodeGpus(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]?.message).toMatch(message);
  });
  const decision: PodDecision = {
    v: 1,
    podUid: 'uid-1',
    node: 'n1',
    decidedAtMs: 1_796_000_000_000,
    containers: [{ name: 'main', index: 0, taskPriority: 1, exclusive: false, gpus: [{ uuid: 'GPU-aaaa', index: 0, memoryBytes: 1000 * MIB, coresPercent: 30, computeMilli: 300 }] }],
  };
  it('decisions round-trip', () => {
    expect(decodeDecision(encodeDecision(decision))).toEqual({ ok: true, value: decision });
  });
  it.each([
    ['garbage', 'x'],
    ['no containers', JSON.stringify({ ...decision, containers: [] })],
    ['cores over 100', JSON.stringify({ ...decision, containers: [{ ...decision.containers[0], gpus: [{ ...decision.containers[0]!.gpus[0], coresPercent: 101 }] }] })],
    ['a repeated container', JSON.stringify({ ...decision, containers: [decision.containers[0], decision.containers[0]] })],
  ])('decisions: refuses %s', (_n, text) => {
    expect(decodeDecision(text).ok).toBe(false);
  });
});
