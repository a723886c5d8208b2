import type { V1Pod } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { gpuNode, gpuPod } from '../../../test/k8s/extender-memory-api.js';
import { ClusterView } from '../extender/cluster-view.js';
import { parsePodGpuRequest } from '../hami/pod-request.js';
import { admit, type AdmissionReviewOut, type JsonPatchOp } from './admission.js';
import { registerWebhookRoute } from './server.js';

const review = (): { request: { uid: string; object: V1Pod; operation: string } } & Record<string, unknown> =>
  JSON.parse(readFileSync(new URL('../../../test/k8s/fixtures/admission-review-create-pod.json', import.meta.url), 'utf8'));

/** Applies add/replace operations as an API server applies the webhook's JSONPatch. */
function applyPatch<T>(doc: T, ops: readonly JsonPatchOp[]): T {
  const out = structuredClone(doc) as Record<string, unknown>;
  for (const op of ops) {
    const tokens = op.path.split('/').slice(1).map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = tokens.pop() as string;
    let at: Record<string, unknown> = out;
    for (const t of tokens) {
      const next = at[t];
      if (typeof next !== 'object' || next === null) throw new Error(`path ${op.path}: ${t} does not exist`);
      at = next as Record<string, unknown>;
    }
    if (op.op === 'replace' && !(last in at)) throw new Error(`replace of a missing ${op.path}`);
    at[last] = op.value;
  }
  return out as T;
}

function patchOf(out: AdmissionReviewOut): JsonPatchOp[] {
  expect(out.response.patchType).toBe('JSONPatch');
  return JSON.parse(Buffer.from(out.response.patch ?? '', 'base64').toString('utf8')) as JsonPatchOp[];
}

const view = new ClusterView();
view.observeNode(gpuNode('n1', 8));
view.observeNode(gpuNode('n2', 4, { model: 'A100-40GB', memoryMiB: 40960 }));
const inventory = () => view.snapshot().nodes.map((n) => n.spec);

describe('the webhook: route GPU pods, write defaults out, refuse what cannot fit', () => {
  it('the API server\'s review of a ReplicaSet pod: routed, one GPU and its cores kept, the whole answer v1', () => {
    const r = review();
    const out = admit(r.request as never, inventory);
    expect(out).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '3f6c2b9a-8e1d-4c7b-a5f0-1d2e3c4b5a69', allowed: true } });
    const ops = patchOf(out);
    const pod = applyPatch(r.request.object, ops);
    expect(pod.spec?.schedulerName).toBe('gpushare-scheduler');
    expect(pod.spec?.containers[0]?.resources?.limits).toEqual({ 'nvidia.com/gpumem': '24k', 'nvidia.com/gpucores': '40', 'nvidia.com/gpu': '1' });
    expect(pod.spec?.containers[0]?.resources?.requests).toEqual(pod.spec?.containers[0]?.resources?.limits);
    // The sidecar without GPUs is left alone.
    expect(pod.spec?.containers[1]?.resources).toEqual({});
    // Still a Pod the client library's serializer reads, and the same request afterwards.
    expect(ObjectSerializer.serialize(ObjectSerializer.deserialize(pod, 'V1Pod', ''), 'V1Pod', '').spec.schedulerName).toBe('gpushare-scheduler');
    const before = parsePodGpuRequest(r.request.object);
    const after = parsePodGpuRequest(pod);
    expect(after.ok && before.ok && after.value?.containers).toEqual(before.ok && before.value?.containers);
  });

  it('a count alone gets the whole GPU written out (or HAMi\'s defaultMemory when configured)', () => {
    const pod = gpuPod('p', { 'nvidia.com/gpu': '2' });
    delete pod.spec!.schedulerName;
    const whole = applyPatch(pod, patchOf(admit({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: pod }, inventory)));
    expect(whole.spec?.containers[0]?.resources?.limits).toEqual({ 'nvidia.com/gpu': '2', 'nvidia.com/gpumem-percentage': '100' });
    expect(whole.spec?.schedulerName).toBe('gpushare-scheduler');
    const fixed = applyPatch(pod, patchOf(admit({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: pod }, inventory, { defaultMemoryMiB: 4096, schedulerName: 'gpu-sched' })));
    expect(fixed.spec?.containers[0]?.resources?.requests).toEqual({ 'nvidia.com/gpu': '2', 'nvidia.com/gpumem': '4096' });
    expect(fixed.spec?.schedulerName).toBe('gpu-sched');
  });

  it('a container without a resources block gets one', () => {
    const pod: V1Pod = { metadata: { name: 'p' }, spec: { containers: [{ name: 'a' }, { name: 'b', resources: { limits: { 'nvidia.com/gpumem': '1000' } } }] } };
    const patched = applyPatch(pod, patchOf(admit({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: pod }, inventory)));
    expect(patched.spec?.containers[1]?.resources).toEqual({ limits: { 'nvidia.com/gpumem': '1000', 'nvidia.com/gpu': '1' }, requests: { 'nvidia.com/gpu': '1' } });
  });

  it('another scheduler named on purpose is kept, with a warning', () => {
    const pod = gpuPod('p', { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '1000' });
    pod.spec!.schedulerName = 'volcano';
    const out = admit({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: pod }, inventory);
    expect(out.response).toEqual({ uid: 'u', allowed: true, warnings: [expect.stringMatching(/schedulerName is volcano/)] });
  });

  it.each([
    ['a pod without GPUs', gpuPod('web', { cpu: '1' }), 'CREATE'],
    ['an UPDATE', gpuPod('p', { 'nvidia.com/gpu': '1' }), 'UPDATE'],
  ])('%s: allowed, no patch', (_n, pod, operation) => {
    expect(admit({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation, object: pod }, inventory).response).toEqual({ uid: 'u', allowed: true });
  });

  it.each([
    ['gpumem over the largest GPU', gpuPod('p', { 'nvidia.com/gpumem': '100000' }), /asks for [0-9.]+ GiB per GPU but the largest matching GPU \(H100-80GB\) has 80 GiB/],
    ['gpumem over the selected model', gpuPod('p', { 'nvidia.com/gpumem': '50000' }, { annotations: { 'nvidia.com/use-gputype': 'A100' } }), /largest matching GPU \(A100-40GB\) has 40 GiB/],
    ['more GPUs than any node', gpuPod('p', { 'nvidia.com/gpu': '9' }), /asks for 9 GPUs but no node has more than 8/],
    ['a model no node has', gpuPod('p', { 'nvidia.com/gpu': '1' }, { annotations: { 'nvidia.com/use-gputype': 'B200' } }), /no GPU in the cluster matches .*models here: H100-80GB, A100-40GB/],
    ['an unknown nvidia.com resource', gpuPod('p', { 'nvidia.com/vgpu': '1' }), /nvidia.com\/vgpu: is not a resource gpushare knows/],
    ['a malformed annotation', gpuPod('p', { 'nvidia.com/gpu': '1' }, { annotations: { 'hami.io/node-scheduler-policy': 'bin-pack' } }), /hami.io\/node-scheduler-policy: is "bin-pack"; expected binpack or spread/],
    ['percentage and MiB', gpuPod('p', { 'nvidia.com/gpumem': '1000', 'nvidia.com/gpumem-percentage': '10' }), /both set/],
  ])('refuses %s, saying why', (_n, pod, message) => {
    const out = admit({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'ml', object: pod }, inventory);
    expect(out.response.allowed).toBe(false);
    expect(out.response.patch).toBeUndefined();
    expect(out.response.status).toMatchObject({ status: 'Failure', code: 422, reason: 'Invalid' });
    expect(out.response.status?.message).toMatch(/^gpushare: pod ml\/p cannot be scheduled: /);
    expect(out.response.status?.message).toMatch(message);
  });

  it('an inventory not synced yet checks the request alone', () => {
    const out = admit({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: gpuPod('p', { 'nvidia.com/gpumem': '900000' }) }, () => []);
    expect(out.response.allowed).toBe(true);
  });
});

describe('the webhook over HTTP', () => {
  const apps: ReturnType<typeof Fastify>[] = [];
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close();
  });
  it('answers a review, and refuses a body that is not one', async () => {
    const app = Fastify();
    apps.push(app);
    registerWebhookRoute(app, inventory);
    const ok = await app.inject({ method: 'POST', url: '/mutate-pods', payload: review() });
    expect(ok.statusCode).toBe(200);
    expect(ok.json<AdmissionReviewOut>().response.allowed).toBe(true);
    const bad = await app.inject({ method: 'POST', url: '/mutate-pods', payload: { ...review(), apiVersion: 'admission.k8s.io/v1beta1' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ message: string }>().message).toMatch(/not an admission.k8s.io\/v1 AdmissionReview: apiVersion/);
  });
});
