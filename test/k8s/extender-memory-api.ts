/**
 * An in-memory API server for the extender's tests: pods with uid and resourceVersion, the
 * merge patch's preconditions (409 on a stale resourceVersion or another uid) and Binding's
 * (409 once bound), with an optional random delay per call so concurrent binds interleave.
 */
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeApiError, type PodBinder, type PodRef } from '../../src/k8s/extender/api.js';
import { encodeNodeGpus, type NodeGpu } from '../../src/k8s/hami/node-gpus.js';

export class MemoryApi implements PodBinder {
  readonly pods = new Map<string, V1Pod>();
  private rv = 1;
  calls = { get: 0, patch: 0, bind: 0 };
  /** Fail the next N Binding POSTs with this status. */
  failBinds: { count: number; status: number } = { count: 0, status: 500 };

  constructor(private readonly maxDelayMs = 0) {}

  add(pod: V1Pod): V1Pod {
    const stored = structuredClone(pod);
    stored.metadata = { ...stored.metadata, resourceVersion: String(this.rv++) };
    this.pods.set(key(stored.metadata.namespace ?? 'default', stored.metadata.name ?? ''), stored);
    return structuredClone(stored);
  }

  async getPod(ref: PodRef): Promise<V1Pod> {
    await this.delay();
    this.calls.get++;
    const p = this.pods.get(key(ref.namespace, ref.name));
    if (!p) throw new KubeApiError(404, `pods "${ref.name}" not found`);
    return structuredClone(p);
  }

  async annotatePod(ref: PodRef & { uid: string; resourceVersion: string }, annotations: Readonly<Record<string, string>>): Promise<V1Pod> {
    await this.delay();
    this.calls.patch++;
    const p = this.pods.get(key(ref.namespace, ref.name));
    if (!p) throw new KubeApiError(404, `pods "${ref.name}" not found`);
    if (p.metadata?.uid !== ref.uid) throw new KubeApiError(409, 'Precondition failed: UID in precondition');
    if (p.metadata?.resourceVersion !== ref.resourceVersion) throw new KubeApiError(409, 'the object has been modified; please apply your changes to the latest version and try again');
    p.metadata = { ...p.metadata, annotations: { ...(p.metadata?.annotations ?? {}), ...annotations }, resourceVersion: String(this.rv++) };
    return structuredClone(p);
  }

  async bindPod(ref: PodRef & { uid: string }, node: string): Promise<void> {
    await this.delay();
    this.calls.bind++;
    if (this.failBinds.count > 0) {
      this.failBinds.count--;
      throw new KubeApiError(this.failBinds.status, 'injected failure');
    }
    const p = this.pods.get(key(ref.namespace, ref.name));
    if (!p) throw new KubeApiError(404, `pods "${ref.name}" not found`);
    if (p.metadata?.uid !== ref.uid) throw new KubeApiError(409, 'Precondition failed: UID in precondition');
    if (p.spec?.nodeName) throw new KubeApiError(409, `pod ${ref.name} is already assigned to node "${p.spec.nodeName}"`);
    p.spec = { ...p.spec!, nodeName: node };
    p.metadata = { ...p.metadata, resourceVersion: String(this.rv++) };
  }

  private async delay(): Promise<void> {
    if (this.maxDelayMs > 0) await sleep(Math.random() * this.maxDelayMs);
    else await Promise.resolve();
  }
}

function key(ns: string, name: string): string {
  return `${ns}/${name}`;
}

export const MIB = 2 ** 20;

/** A Node carrying `count` H100s in the inventory annotation (GPUs `lost` where listed). */
export function gpuNode(name: string, count = 8, opts: { memoryMiB?: number; model?: string; lost?: number[] } = {}): V1Node {
  const gpus: NodeGpu[] = Array.from({ length: count }, (_, i) => ({
    index: i,
    uuid: `GPU-${name}-${i}`,
    model: opts.model ?? 'H100-80GB',
    name: `NVIDIA ${opts.model ?? 'H100 80GB'} HBM3`,
    memoryMiB: opts.memoryMiB ?? 81920,
    health: opts.lost?.includes(i) ? 'lost' : 'ok',
    numaNode: i < count / 2 ? 0 : 1,
  }));
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, annotations: { 'gpushare.io/node-gpus': encodeNodeGpus(gpus) } } };
}

/** A pending pod asking for HAMi resources in one container. */
export function gpuPod(name: string, limits: Record<string, string>, opts: { namespace?: string; annotations?: Record<string, string>; priority?: number; priorityClassName?: string } = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: opts.namespace ?? 'default', uid: `uid-${name}`, annotations: opts.annotations ?? {} },
    spec: {
      containers: [{ name: 'main', image: 'cuda', resources: { limits, requests: limits } }],
      schedulerName: 'gpushare-scheduler',
      ...(opts.priority === undefined ? {} : { priority: opts.priority }),
      ...(opts.priorityClassName === undefined ? {} : { priorityClassName: opts.priorityClassName }),
    },
    status: { phase: 'Pending' },
  };
}
