/**
 * The extender's API server side over @kubernetes/client-node: PodBinder (read a pod, merge-patch
 * its annotations with uid and resourceVersion preconditions, POST its Binding) and the
 * informers that keep the cluster view current (every node, every pod).
 */
import { CoreV1Api, makeInformer, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Binding, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { KubeApiError, type PodBinder, type PodRef } from './api.js';
import type { Extender } from './extender.js';

export class KubePodBinder implements PodBinder {
  private readonly core: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async getPod(ref: PodRef): Promise<V1Pod> {
    return call(() => this.core.readNamespacedPod({ name: ref.name, namespace: ref.namespace }));
  }

  async annotatePod(ref: PodRef & { uid: string; resourceVersion: string }, annotations: Readonly<Record<string, string>>): Promise<V1Pod> {
    // A merge patch that names uid and resourceVersion: the API server refuses it (409) unless
    // the pod is still that object at that version.
    const body = { metadata: { uid: ref.uid, resourceVersion: ref.resourceVersion, annotations } };
    return call(() => this.core.patchNamespacedPod({ name: ref.name, namespace: ref.namespace, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)));
  }

  async bindPod(ref: PodRef & { uid: string }, node: string): Promise<void> {
    const body: V1Binding = {
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name: ref.name, namespace: ref.namespace, uid: ref.uid },
      target: { apiVersion: 'v1', kind: 'Node', name: node },
    };
    await call(() => this.core.createNamespacedPodBinding({ name: ref.name, namespace: ref.namespace, body }));
  }
}

/** A running watch of nodes and pods into an extender; stop() ends both. */
export interface ClusterWatch {
  stop(): Promise<void>;
}

/**
 * Lists and watches every node and pod into `extender` (its view, and preemption's nominations).
 * Resolves once both lists are in. `onError` hears watch failures (the informers re-list and go on).
 */
export async function watchCluster(kc: KubeConfig, extender: Extender, onError: (e: unknown) => void = () => undefined): Promise<ClusterWatch> {
  const core = kc.makeApiClient(CoreV1Api);
  const nodes = makeInformer<V1Node>(kc, '/api/v1/nodes', () => core.listNode());
  const pods = makeInformer<V1Pod>(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());
  const node = (n: V1Node): void => extender.view.observeNode(n);
  nodes.on('add', node);
  nodes.on('update', node);
  nodes.on('delete', (n) => {
    if (n.metadata?.name) extender.view.removeNode(n.metadata.name);
  });
  const pod = (deleted: boolean) => (p: V1Pod) => {
    extender.observePod(p, deleted).catch(onError);
  };
  pods.on('add', pod(false));
  pods.on('update', pod(false));
  pods.on('delete', pod(true));
  nodes.on('error', onError);
  pods.on('error', onError);
  await Promise.all([nodes.start(), pods.start()]);
  return {
    async stop() {
      await Promise.all([nodes.stop(), pods.stop()]);
    },
  };
}

/** Runs a client call, turning its HTTP failures into KubeApiError with the status. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const code = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'number' ? e.code : null;
    if (code === null) throw e;
    const body = (e as { body?: unknown }).body;
    const message = statusMessage(body) ?? `HTTP ${code}`;
    throw new KubeApiError(code, message, { cause: e });
  }
}

/** The message of a metav1.Status body (as JSON text or parsed). */
function statusMessage(body: unknown): string | null {
  let b: unknown = body;
  if (typeof body === 'string') {
    try {
      b = JSON.parse(body);
    } catch {
      return body.length > 0 ? body.slice(0, 500) : null;
    }
  }
  return typeof b === 'object' && b !== null && 'message' in b && typeof b.message === 'string' ? b.message : null;
}
