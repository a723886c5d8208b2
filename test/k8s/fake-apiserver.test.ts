import { ApiException, CoreV1Api, PatchStrategy, ResourceV1Api, Watch, makeInformer, setHeaderOptions, type V1Pod, type V1ResourceSlice } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeApiServer, until, type FakeApiServer } from './fake-apiserver.js';

let api: FakeApiServer;
let core: CoreV1Api;
let resource: ResourceV1Api;

beforeEach(async () => {
  api = await startFakeApiServer();
  core = api.kubeConfig().makeApiClient(CoreV1Api);
  resource = api.kubeConfig().makeApiClient(ResourceV1Api);
});
afterEach(async () => {
  await api.close();
});

function slice(name: string, node: string, driver = 'gpu.gpushare.io'): V1ResourceSlice {
  return { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceSlice', metadata: { name }, spec: { driver, nodeName: node, pool: { name: node, generation: 1, resourceSliceCount: 1 }, devices: [{ name: 'gpu-0' }] } };
}

async function apiError(promise: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiException) return { code: err.code, body: (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as Record<string, unknown> };
    throw err;
  }
  throw new Error('expected the call to fail');
}

/** Collects watch events until stopped; `done` resolves when the server ends the watch. */
async function watchEvents(path: string, query: Record<string, string>) {
  const events: { type: string; object: Record<string, unknown> }[] = [];
  let ended: (err: unknown) => void = () => {};
  const done = new Promise<unknown>((resolve) => { ended = resolve; });
  const controller = await new Watch(api.kubeConfig()).watch(path, query, (type, object) => events.push({ type, object }), (err) => ended(err));
  return { events, done, stop: () => controller.abort() };
}

describe('objects', () => {
  it('creates, gets, lists and stamps metadata', async () => {
    const created = await resource.createResourceSlice({ body: slice('a', 'n1') });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.resourceVersion).toBe(api.resourceVersion);
    const got = await resource.readResourceSlice({ name: 'a' });
    expect(got.spec.devices).toEqual([{ name: 'gpu-0' }]);
    const list = await resource.listResourceSlice();
    expect(list.items.map((s) => s.metadata?.name)).toEqual(['a']);
    expect(list.metadata?.resourceVersion).toBe(api.resourceVersion);
  });

  it('answers 409 AlreadyExists as a metav1.Status', async () => {
    await resource.createResourceSlice({ body: slice('a', 'n1') });
    const err = await apiError(resource.createResourceSlice({ body: slice('a', 'n1') }));
    expect(err.code).toBe(409);
    expect(err.body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'AlreadyExists', code: 409, message: 'resourceslices.resource.k8s.io "a" already exists' });
  });

  it('answers 404 NotFound for a missing object', async () => {
    const err = await apiError(core.readNode({ name: 'nope' }));
    expect(err.body).toMatchObject({ reason: 'NotFound', code: 404, details: { name: 'nope', kind: 'nodes' } });
  });

  it('refuses an update with a stale resourceVersion (409 Conflict) and takes a current one', async () => {
    const created = await resource.createResourceSlice({ body: slice('a', 'n1') });
    api.mutate('resourceslices', 'a', (o) => { (o.spec as { pool: { generation: number } }).pool.generation = 2; });
    const stale = { ...created, spec: { ...created.spec, devices: [{ name: 'gpu-1' }] } };
    const err = await apiError(resource.replaceResourceSlice({ name: 'a', body: stale }));
    expect(err.body).toMatchObject({ reason: 'Conflict', code: 409 });
    expect(api.object('resourceslices', 'a')?.spec).toMatchObject({ devices: [{ name: 'gpu-0' }] });
    const fresh = await resource.readResourceSlice({ name: 'a' });
    const updated = await resource.replaceResourceSlice({ name: 'a', body: { ...fresh, spec: { ...fresh.spec, devices: [{ name: 'gpu-1' }] } } });
    expect(updated.spec.devices).toEqual([{ name: 'gpu-1' }]);
    expect(updated.metadata?.generation).toBe(2);
    expect(Number(updated.metadata?.resourceVersion)).toBeGreaterThan(Number(fresh.metadata?.resourceVersion));
  });

  it('changes nothing on an update that changes nothing', async () => {
    const created = await resource.createResourceSlice({ body: slice('a', 'n1') });
    const again = await resource.replaceResourceSlice({ name: 'a', body: created });
    expect(again.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);
  });

  it('deletes, honouring a resourceVersion precondition', async () => {
    const created = await resource.createResourceSlice({ body: slice('a', 'n1') });
    api.mutate('resourceslices', 'a', (o) => { o.metadata.labels = { x: 'y' }; });
    const err = await apiError(resource.deleteResourceSlice({ name: 'a', body: { preconditions: { resourceVersion: created.metadata!.resourceVersion! } } }));
    expect(err.code).toBe(409);
    await resource.deleteResourceSlice({ name: 'a' });
    expect(api.objects('resourceslices')).toEqual([]);
  });

  it('rejects a field client-node\'s model does not know (strict field validation)', async () => {
    // client-node's own calls drop unknown fields before sending; hand-made bodies do not.
    const bad = { ...slice('a', 'n1'), spec: { ...slice('a', 'n1').spec, devices: [{ name: 'gpu-0', capacityy: {} }] } };
    const res = await fetch(`${api.url}/apis/resource.k8s.io/v1/resourceslices`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bad) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ kind: 'Status', reason: 'BadRequest', message: expect.stringContaining('strict decoding error') });
    expect(api.objects('resourceslices')).toEqual([]);
    await resource.createResourceSlice({ body: bad as V1ResourceSlice });
    expect(api.object('resourceslices', 'a')?.spec).toMatchObject({ devices: [{ name: 'gpu-0' }] });
  });
});

describe('selectors', () => {
  beforeEach(() => {
    api.seed('resourceslices', slice('a', 'n1'));
    api.seed('resourceslices', slice('b', 'n2'));
    api.seed('resourceslices', { ...slice('c', 'n1', 'other.example.com'), metadata: { name: 'c', labels: { tier: 'x' } } });
  });

  it.each([
    ['spec.nodeName=n1', ['a', 'c']],
    ['spec.nodeName=n1,spec.driver=gpu.gpushare.io', ['a']],
    ['spec.driver!=gpu.gpushare.io', ['c']],
  ])('fieldSelector %s', async (fieldSelector, names) => {
    const list = await resource.listResourceSlice({ fieldSelector });
    expect(list.items.map((s) => s.metadata?.name).sort()).toEqual(names);
  });

  it.each([['tier=x', ['c']], ['!tier', ['a', 'b']], ['tier in (x,z)', ['c']], ['tier notin (x)', ['a', 'b']]])('labelSelector %s', async (labelSelector, names) => {
    const list = await resource.listResourceSlice({ labelSelector });
    expect(list.items.map((s) => s.metadata?.name).sort()).toEqual(names);
  });

  it('refuses a field the resource does not support (400)', async () => {
    const err = await apiError(resource.listResourceSlice({ fieldSelector: 'spec.pool.name=n1' }));
    expect(err.code).toBe(400);
    expect(String(err.body.message)).toMatch(/field label not supported: spec.pool.name/);
  });
});

describe('patches as client-node sends them', () => {
  beforeEach(() => {
    api.seed('nodes', { metadata: { name: 'n1', labels: { a: '1' } }, spec: {} });
  });

  it('JSON patch (client-node\'s default content type)', async () => {
    const node = await core.patchNode({ name: 'n1', body: [{ op: 'add', path: '/metadata/labels/b', value: '2' }, { op: 'remove', path: '/metadata/labels/a' }] });
    expect(node.metadata?.labels).toEqual({ b: '2' });
    expect(api.requests.at(-1)?.contentType).toBe(PatchStrategy.JsonPatch);
  });

  it('merge patch', async () => {
    const node = await core.patchNode({ name: 'n1', body: { metadata: { labels: { a: null, c: '3' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(node.metadata?.labels).toEqual({ c: '3' });
  });

  it('strategic merge patch merges conditions by type', async () => {
    api.seed('pods', { metadata: { name: 'p', namespace: 'ns' }, spec: { containers: [{ name: 'c', image: 'i' }] }, status: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'PodScheduled', status: 'True' }] } });
    const pod = await core.patchNamespacedPodStatus({ name: 'p', namespace: 'ns', body: { status: { conditions: [{ type: 'Ready', status: 'True' }] } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    expect(pod.status?.conditions?.map((c) => [c.type, c.status])).toEqual([['Ready', 'True'], ['PodScheduled', 'True']]);
  });

  it('a stale resourceVersion in a patch is a 409', async () => {
    const err = await apiError(core.patchNode({ name: 'n1', body: { metadata: { resourceVersion: '1', labels: { z: '1' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)));
    expect(err.code).toBe(409);
  });

  it('a failed JSON patch test is a 422 and changes nothing', async () => {
    const err = await apiError(core.patchNode({ name: 'n1', body: [{ op: 'test', path: '/metadata/labels/a', value: '2' }, { op: 'add', path: '/metadata/labels/b', value: '2' }] }));
    expect(err.code).toBe(422);
    expect(api.object('nodes', 'n1')?.metadata.labels).toEqual({ a: '1' });
  });

  it('server-side apply is not served (415)', async () => {
    const err = await apiError(core.patchNode({ name: 'n1', body: { metadata: {} } }, setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply)));
    expect(err.code).toBe(415);
  });
});

describe('pods', () => {
  const pod: V1Pod = { metadata: { name: 'p', namespace: 'ns' }, spec: { containers: [{ name: 'c', image: 'i' }] } };

  it('binds once: a second binding is a 409', async () => {
    await core.createNamespacedPod({ namespace: 'ns', body: pod });
    await core.createNamespacedPodBinding({ name: 'p', namespace: 'ns', body: { metadata: { name: 'p' }, target: { kind: 'Node', name: 'n1' } } });
    expect((api.object('pods', 'p', 'ns')?.spec as { nodeName?: string }).nodeName).toBe('n1');
    const err = await apiError(core.createNamespacedPodBinding({ name: 'p', namespace: 'ns', body: { metadata: { name: 'p' }, target: { kind: 'Node', name: 'n2' } } }));
    expect(err.code).toBe(409);
    expect((api.object('pods', 'p', 'ns')?.spec as { nodeName?: string }).nodeName).toBe('n1');
  });

  it('keeps status on a main update and the rest on a status update', async () => {
    const created = await core.createNamespacedPod({ namespace: 'ns', body: { ...pod, status: { phase: 'Running' } } });
    expect(created.status?.phase).toBe('Pending');
    const withStatus = await core.replaceNamespacedPodStatus({ name: 'p', namespace: 'ns', body: { ...created, metadata: { ...created.metadata, labels: { x: '1' } }, status: { phase: 'Running' } } });
    expect(withStatus.status?.phase).toBe('Running');
    expect(withStatus.metadata?.labels).toBeUndefined();
    const main = await core.replaceNamespacedPod({ name: 'p', namespace: 'ns', body: { ...withStatus, status: { phase: 'Failed' }, metadata: { ...withStatus.metadata, labels: { x: '1' } } } });
    expect(main.status?.phase).toBe('Running');
    expect(main.metadata?.labels).toEqual({ x: '1' });
  });

  it('lists pods by spec.nodeName across namespaces', async () => {
    api.seed('pods', { metadata: { name: 'a', namespace: 'x' }, spec: { nodeName: 'n1', containers: [] } });
    api.seed('pods', { metadata: { name: 'b', namespace: 'y' }, spec: { nodeName: 'n2', containers: [] } });
    const list = await core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=n1' });
    expect(list.items.map((p) => p.metadata?.name)).toEqual(['a']);
  });

  it('records events', async () => {
    await core.createNamespacedEvent({ namespace: 'ns', body: { metadata: { name: 'e1', namespace: 'ns' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'ns' }, reason: 'Bad', message: 'why', type: 'Warning' } });
    const list = await core.listNamespacedEvent({ namespace: 'ns', fieldSelector: 'involvedObject.name=p' });
    expect(list.items.map((e) => e.reason)).toEqual(['Bad']);
  });
});

describe('resource claims and device classes', () => {
  it('keeps a claim\'s spec on a status update, and serves claims across namespaces', async () => {
    const claim = await resource.createNamespacedResourceClaim({ namespace: 'ns', body: { metadata: { name: 'c' }, spec: { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: 'gpu-slice.gpushare.io', capacity: { requests: { memory: '20Gi' } } } }] } } } });
    const allocated = { results: [{ request: 'gpu', driver: 'gpu.gpushare.io', pool: 'n1', device: 'gpu-0', consumedCapacity: { memory: '20Gi' } }] };
    const updated = await resource.replaceNamespacedResourceClaimStatus({ name: 'c', namespace: 'ns', body: { ...claim, spec: { devices: { requests: [] } }, status: { allocation: { devices: allocated } } } });
    expect(updated.status?.allocation?.devices?.results?.[0]?.consumedCapacity).toEqual({ memory: '20Gi' });
    expect(updated.spec.devices?.requests?.[0]?.exactly?.capacity?.requests).toEqual({ memory: '20Gi' });
    const patched = await resource.patchNamespacedResourceClaimStatus({ name: 'c', namespace: 'ns', body: [{ op: 'add', path: '/status/reservedFor', value: [{ resource: 'pods', name: 'p', uid: 'u1' }] }] });
    expect(patched.status?.reservedFor).toEqual([{ resource: 'pods', name: 'p', uid: 'u1' }]);
    expect((await resource.listResourceClaimForAllNamespaces()).items.map((c) => c.metadata?.namespace)).toEqual(['ns']);
  });

  it('creates and lists device classes', async () => {
    await resource.createDeviceClass({ body: { metadata: { name: 'gpu.gpushare.io' }, spec: { selectors: [{ cel: { expression: 'device.driver == "gpu.gpushare.io"' } }] } } });
    expect((await resource.listDeviceClass()).items.map((c) => c.spec.selectors?.[0]?.cel?.expression)).toEqual(['device.driver == "gpu.gpushare.io"']);
  });
});

describe('watch', () => {
  it('streams ADDED, MODIFIED and DELETED after the given version, filtered by field selector', async () => {
    const list = await resource.listResourceSlice();
    const watch = await watchEvents('/apis/resource.k8s.io/v1/resourceslices', { resourceVersion: list.metadata!.resourceVersion!, fieldSelector: 'spec.nodeName=n1' });
    await resource.createResourceSlice({ body: slice('a', 'n1') });
    await resource.createResourceSlice({ body: slice('b', 'n2') });
    api.mutate('resourceslices', 'a', (o) => { o.metadata.labels = { x: '1' }; });
    api.remove('resourceslices', 'a');
    await until(() => watch.events.length >= 3, 5000, 'three events');
    expect(watch.events.map((e) => [e.type, (e.object.metadata as { name: string }).name])).toEqual([['ADDED', 'a'], ['MODIFIED', 'a'], ['DELETED', 'a']]);
    watch.stop();
  });

  it('replays what happened after an older version, and sends everything as ADDED without one', async () => {
    api.seed('nodes', { metadata: { name: 'n1' } });
    const rv = api.resourceVersion;
    api.seed('nodes', { metadata: { name: 'n2' } });
    const replay = await watchEvents('/api/v1/nodes', { resourceVersion: rv });
    const all = await watchEvents('/api/v1/nodes', {});
    await until(() => replay.events.length === 1 && all.events.length === 2, 5000, 'events');
    expect(replay.events.map((e) => (e.object.metadata as { name: string }).name)).toEqual(['n2']);
    expect(all.events.map((e) => e.type)).toEqual(['ADDED', 'ADDED']);
    replay.stop();
    all.stop();
  });

  it('answers a compacted version with an ERROR event carrying 410 Expired', async () => {
    api.seed('nodes', { metadata: { name: 'n1' } });
    const old = api.resourceVersion;
    api.seed('nodes', { metadata: { name: 'n2' } });
    api.compact();
    const watch = await watchEvents('/api/v1/nodes', { resourceVersion: String(Number(old) - 1) });
    await watch.done;
    expect(watch.events).toEqual([{ type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired' }) }]);
  });

  it('sends an injected 410 on a watch as an ERROR event, as the real server does', async () => {
    api.failNext({ verb: 'watch', resource: 'nodes' }, { code: 410 });
    const watch = await watchEvents('/api/v1/nodes', { resourceVersion: api.resourceVersion });
    await watch.done;
    expect(watch.events).toEqual([{ type: 'ERROR', object: expect.objectContaining({ code: 410, reason: 'Expired' }) }]);
  });

  it('sees an object leave the selection as DELETED', async () => {
    api.seed('resourceslices', slice('a', 'n1'));
    const watch = await watchEvents('/apis/resource.k8s.io/v1/resourceslices', { resourceVersion: api.resourceVersion, labelSelector: '!gone' });
    api.mutate('resourceslices', 'a', (o) => { o.metadata.labels = { gone: 'yes' }; });
    await until(() => watch.events.length === 1, 5000, 'an event');
    expect(watch.events[0]!.type).toBe('DELETED');
    watch.stop();
  });

  it('drops watches on request, and client-node sees the end', async () => {
    const watch = await watchEvents('/api/v1/nodes', { resourceVersion: api.resourceVersion });
    await until(() => api.openWatches('nodes') === 1, 5000, 'the watch');
    expect(api.dropWatches()).toBe(1);
    await expect(watch.done).resolves.toBeNull();
  });

  it('serves client-node\'s informer: list, then watch, then relist after a drop', async () => {
    api.seed('nodes', { metadata: { name: 'n1' } });
    const informer = makeInformer(api.kubeConfig(), '/api/v1/nodes', () => core.listNode());
    const seen: string[] = [];
    informer.on('add', (n) => seen.push(`add ${n.metadata?.name}`));
    informer.on('update', (n) => seen.push(`update ${n.metadata?.name}`));
    await informer.start();
    api.seed('nodes', { metadata: { name: 'n2' } });
    await until(() => seen.length === 2, 5000, 'two adds');
    api.dropWatches();
    await until(() => api.openWatches('nodes') === 1, 5000, 'the informer to watch again');
    api.mutate('nodes', 'n1', (o) => { o.metadata.labels = { x: '1' }; });
    await until(() => seen.includes('update n1'), 5000, 'the update');
    await informer.stop();
    expect(seen.slice(0, 2)).toEqual(['add n1', 'add n2']);
  });
});

describe('injected failures', () => {
  it('fails the next matching request once with the Status asked for, then serves', async () => {
    api.failNext({ verb: 'create', resource: 'resourceslices' }, { code: 503, message: 'etcd is away' });
    const err = await apiError(resource.createResourceSlice({ body: slice('a', 'n1') }));
    expect(err.body).toMatchObject({ code: 503, reason: 'ServiceUnavailable', message: 'etcd is away' });
    expect(api.objects('resourceslices')).toEqual([]);
    await resource.createResourceSlice({ body: slice('a', 'n1') });
    expect(api.writes('resourceslices').map((w) => [w.verb, w.status])).toEqual([['create', 503], ['create', 201]]);
  });
});
