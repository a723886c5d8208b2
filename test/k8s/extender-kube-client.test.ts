/**
 * The extender's client side against a small local API server (only the endpoints it uses:
 * get/patch of a pod, pods/binding, list+watch of nodes and pods), every object it writes
 * checked with @kubernetes/client-node's own typed serializer.
 */
import { KubeConfig, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Extender } from '../../src/k8s/extender/extender.js';
import { KubePodBinder, watchCluster, type ClusterWatch } from '../../src/k8s/extender/kube-client.js';
import { startClusterComponent, type ClusterComponent } from '../../src/k8s/extender/serve.js';
import { decodeDecision } from '../../src/k8s/hami/decision.js';
import { gpuNode, gpuPod } from './extender-memory-api.js';

interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  body: unknown;
}

/** Just enough API server: one namespace's pods by name, nodes, resourceVersions, 409s, watches. */
class LocalApiServer {
  readonly pods = new Map<string, V1Pod>();
  readonly nodes = new Map<string, V1Node>();
  readonly seen: Seen[] = [];
  private rv = 100;
  private readonly watchers = new Map<string, Set<ServerResponse>>();
  private server: Server | null = null;
  /** Bumps the pod's resourceVersion before the next PATCH (someone else wrote it). */
  raceNextPatch = false;

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const set of this.watchers.values()) for (const r of set) r.end();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }

  addPod(p: V1Pod): void {
    p.metadata = { ...p.metadata, resourceVersion: String(this.rv++) };
    this.pods.set(p.metadata.name ?? '', p);
    this.emit('/api/v1/pods', 'ADDED', p);
  }

  addNode(n: V1Node): void {
    n.metadata = { ...n.metadata, resourceVersion: String(this.rv++) };
    this.nodes.set(n.metadata.name ?? '', n);
    this.emit('/api/v1/nodes', 'ADDED', n);
  }

  /** Every event, so a watch from a resourceVersion gets what happened since (the informer lists, then watches). */
  private readonly events: { path: string; rv: number; line: string }[] = [];

  private emit(path: string, type: string, object: { metadata?: { resourceVersion?: string } }): void {
    const line = `${JSON.stringify({ type, object })}\n`;
    this.events.push({ path, rv: Number(object.metadata?.resourceVersion ?? 0), line });
    for (const r of this.watchers.get(path) ?? []) r.write(line);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://x');
    this.seen.push({ method: req.method ?? '', url: url.pathname, contentType: req.headers['content-type'], body: text ? JSON.parse(text) : null });
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const status = (code: number, reason: string, message: string): void => send(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });
    const list = (kind: string, items: unknown[]): void => send(200, { kind, apiVersion: 'v1', metadata: { resourceVersion: String(this.rv - 1) }, items });
    if (req.method === 'GET' && (url.pathname === '/api/v1/nodes' || url.pathname === '/api/v1/pods')) {
      if (url.searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        const from = Number(url.searchParams.get('resourceVersion') ?? 0);
        for (const e of this.events) if (e.path === url.pathname && e.rv > from) res.write(e.line);
        const set = this.watchers.get(url.pathname) ?? new Set();
        set.add(res);
        this.watchers.set(url.pathname, set);
        req.on('close', () => set.delete(res));
        return;
      }
      return url.pathname === '/api/v1/nodes' ? list('NodeList', [...this.nodes.values()]) : list('PodList', [...this.pods.values()]);
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/binding)?$/.exec(url.pathname);
    const pod = m ? this.pods.get(decodeURIComponent(m[2] ?? '')) : undefined;
    if (!m || !pod) return status(404, 'NotFound', `pods "${m?.[2] ?? ''}" not found`);
    if (req.method === 'GET' && !m[3]) return send(200, pod);
    if (req.method === 'PATCH' && !m[3]) {
      if (req.headers['content-type'] !== 'application/merge-patch+json') return status(415, 'UnsupportedMediaType', `unsupported patch type ${req.headers['content-type']}`);
      if (this.raceNextPatch) {
        this.raceNextPatch = false;
        pod.metadata = { ...pod.metadata, resourceVersion: String(this.rv++) };
      }
      const patch = JSON.parse(text) as { metadata: { uid?: string; resourceVersion?: string; annotations?: Record<string, string> } };
      if (patch.metadata.uid !== undefined && patch.metadata.uid !== pod.metadata?.uid) return status(409, 'Conflict', 'Precondition failed: UID in precondition');
      if (patch.metadata.resourceVersion !== undefined && patch.metadata.resourceVersion !== pod.metadata?.resourceVersion) {
        return status(409, 'Conflict', `Operation cannot be fulfilled on pods "${pod.metadata?.name}": the object has been modified; please apply your changes to the latest version and try again`);
      }
      pod.metadata = { ...pod.metadata, annotations: { ...pod.metadata?.annotations, ...patch.metadata.annotations }, resourceVersion: String(this.rv++) };
      this.emit('/api/v1/pods', 'MODIFIED', pod);
      return send(200, pod);
    }
    if (req.method === 'POST' && m[3]) {
      const b = JSON.parse(text) as { metadata?: { uid?: string }; target?: { name?: string } };
      if (b.metadata?.uid !== pod.metadata?.uid) return status(409, 'Conflict', 'Precondition failed: UID in precondition');
      if (pod.spec?.nodeName) return status(409, 'Conflict', `pod ${pod.metadata?.name} is already assigned to node "${pod.spec.nodeName}"`);
      pod.spec = { ...pod.spec!, nodeName: b.target?.name ?? '' };
      pod.metadata = { ...pod.metadata, resourceVersion: String(this.rv++) };
      this.emit('/api/v1/pods', 'MODIFIED', pod);
      return send(201, { kind: 'Status', apiVersion: 'v1', status: 'Success', code: 201 });
    }
    return status(405, 'MethodNotAllowed', 'not served here');
  }
}

function kubeConfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server, skipTLSVerify: true }],
    users: [{ name: 'extender', token: 'test-token' }],
    contexts: [{ name: 'local', cluster: 'local', user: 'extender' }],
    currentContext: 'local',
  });
  return kc;
}

const typed = (body: unknown, type: string): unknown => ObjectSerializer.serialize(ObjectSerializer.deserialize(body, type, ''), type, '');

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('the extender over @kubernetes/client-node', () => {
  let api: LocalApiServer;
  let watch: ClusterWatch | null = null;
  let component: ClusterComponent | null = null;
  afterEach(async () => {
    await watch?.stop();
    watch = null;
    await component?.close();
    component = null;
    await api.stop();
  });

  it('the component as one process: the webhook routes a pod, filter and prioritize rank, bind binds, over real HTTP', async () => {
    api = new LocalApiServer();
    const kc = kubeConfig(await api.start());
    api.addNode(gpuNode('n1', 1));
    api.addNode(gpuNode('n2', 1));
    component = await startClusterComponent({ kubeConfig: kc, host: '127.0.0.1', port: 0, extender: { now: () => 7 } });
    const post = async (path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> & { FailedNodes?: Record<string, string>; response?: unknown } }> => {
      const r = await fetch(`${component?.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
    // n2 is half full.
    api.addPod({ ...gpuPod('old', { 'nvidia.com/gpumem': '40960' }), spec: { ...gpuPod('old', {}).spec!, nodeName: 'n2' }, metadata: { ...gpuPod('old', {}).metadata, annotations: { 'gpushare.io/decision': JSON.stringify({ v: 1, podUid: 'uid-old', node: 'n2', decidedAtMs: 1, containers: [{ name: 'main', index: 0, taskPriority: 1, exclusive: false, gpus: [{ uuid: 'GPU-n2-0', index: 0, memoryBytes: 40960 * 2 ** 20, coresPercent: 0, computeMilli: 0 }] }] }) } } });
    await until(() => (component?.extender.view.snapshot().nodes.find((n) => n.spec.name === 'n2')?.placements.length ?? 0) === 1, 'the bound pod from the watch');

    const pod = gpuPod('new', { 'nvidia.com/gpumem': '30000' });
    delete pod.spec!.schedulerName;
    const review = await post('/mutate-pods', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'r1', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', namespace: 'default', object: pod } });
    expect(review.json.response).toMatchObject({ uid: 'r1', allowed: true, patchType: 'JSONPatch' });
    const filter = await post('/gpushare-scheduler/filter', { Pod: pod, NodeNames: ['n1', 'n2', 'n3'] });
    expect(filter.json).toMatchObject({ NodeNames: ['n1', 'n2'], FailedAndUnresolvableNodes: { n3: expect.stringMatching(/no GPUs gpushare schedules/) }, Error: '' });
    const ranked = await post('/gpushare-scheduler/prioritize', { Pod: pod, NodeNames: ['n1', 'n2'] });
    // binpack (HAMi's default node policy): the busier n2 first.
    expect(ranked.json).toEqual([{ Host: 'n1', Score: 0 }, { Host: 'n2', Score: 10 }]);
    api.addPod(pod);
    const bound = await post('/gpushare-scheduler/bind', { PodName: 'new', PodNamespace: 'default', PodUID: 'uid-new', Node: 'n2' });
    expect(bound).toEqual({ status: 200, json: { Error: '' } });
    expect(api.pods.get('new')?.spec?.nodeName).toBe('n2');
    // n2 is now full for another 30,000 MiB: filter says so, as a node preemption could help.
    const again = await post('/gpushare-scheduler/filter', { Pod: gpuPod('third', { 'nvidia.com/gpumem': '30000' }), NodeNames: ['n2'] });
    expect(again.json.FailedNodes?.n2).toMatch(/GPU 0: 10.7 GiB free, 29.3 GiB asked/);
  });

  it('watches nodes and pods, records the decision with preconditions, binds, and sees it back', async () => {
    api = new LocalApiServer();
    const kc = kubeConfig(await api.start());
    api.addNode(gpuNode('n1', 2));
    const ext = new Extender(new KubePodBinder(kc), { now: () => 1 });
    watch = await watchCluster(kc, ext);
    expect(ext.view.hasNode('n1')).toBe(true);
    // A node that appears later arrives through the watch.
    api.addNode(gpuNode('n2', 1));
    await until(() => ext.view.hasNode('n2'), 'node n2 from the watch');

    api.addPod(gpuPod('p', { 'nvidia.com/gpumem': '8192', 'nvidia.com/gpucores': '50' }, { namespace: 'default' }));
    api.raceNextPatch = true;
    const r = await ext.bind({ PodName: 'p', PodNamespace: 'default', PodUID: 'uid-p', Node: 'n1' });
    expect(r.Error).toBe('');
    const pod = api.pods.get('p');
    expect(pod?.spec?.nodeName).toBe('n1');
    const d = decodeDecision(pod?.metadata?.annotations?.['gpushare.io/decision'] ?? '');
    expect(d.ok && d.value.containers[0]?.gpus[0]).toMatchObject({ memoryBytes: 8192 * 2 ** 20, coresPercent: 50 });

    // The first PATCH met a newer resourceVersion (409), the second carried the fresh one.
    const patches = api.seen.filter((s) => s.method === 'PATCH');
    expect(patches.length).toBe(2);
    for (const p of patches) {
      expect(p.contentType).toBe('application/merge-patch+json');
      expect(p.body).toMatchObject({ metadata: { uid: 'uid-p', resourceVersion: expect.any(String) } });
    }
    const binding = api.seen.find((s) => s.method === 'POST');
    expect(binding?.url).toBe('/api/v1/namespaces/default/pods/p/binding');
    expect(typed(binding?.body, 'V1Binding')).toEqual(binding?.body);
    expect(binding?.body).toEqual({ apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p', namespace: 'default', uid: 'uid-p' }, target: { apiVersion: 'v1', kind: 'Node', name: 'n1' } });
    expect(typed(patches[1]?.body, 'V1Pod')).toMatchObject({ metadata: patches[1]?.body && (patches[1].body as { metadata: object }).metadata });

    // The watch brings the bound pod back: its reservation becomes the pod's, held on n1.
    await until(() => ext.view.snapshot().nodes.find((n) => n.spec.name === 'n1')?.placements.length === 1, 'the bound pod from the watch');
    // A second bind (a retry) is a no-op: already bound there.
    expect((await ext.bind({ PodName: 'p', PodNamespace: 'default', PodUID: 'uid-p', Node: 'n1' })).Error).toBe('');
    expect(api.seen.filter((s) => s.method === 'POST').length).toBe(1);
  });

  it('the API server\'s refusals come back as the bind\'s Error with their message', async () => {
    api = new LocalApiServer();
    const kc = kubeConfig(await api.start());
    const binder = new KubePodBinder(kc);
    await expect(binder.getPod({ namespace: 'default', name: 'ghost' })).rejects.toMatchObject({ status: 404, message: 'pods "ghost" not found' });
    api.addPod(gpuPod('p', { 'nvidia.com/gpu': '1' }));
    await expect(binder.annotatePod({ namespace: 'default', name: 'p', uid: 'uid-other', resourceVersion: '1' }, { a: 'b' })).rejects.toMatchObject({ status: 409, message: /UID in precondition/ });
    await expect(binder.bindPod({ namespace: 'default', name: 'p', uid: 'uid-p' }, 'n1')).resolves.toBeUndefined();
    await expect(binder.bindPod({ namespace: 'default', name: 'p', uid: 'uid-p' }, 'n2')).rejects.toMatchObject({ status: 409, message: /already assigned to node "n1"/ });
  });
});
