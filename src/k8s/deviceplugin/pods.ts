/**
 * The pods bound to this node, kept by a watch (list once, then watch; re-list after a 410 or a
 * failed watch), so Allocate reads memory rather than the API server; and the patch that records
 * a served container on its pod (`gpushare.io/allocated`), with uid and resourceVersion
 * preconditions, re-read and retried on a conflict.
 */
import { ListWatch, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { apiFailure, isTransient, type ApiClients } from '../api/client.js';
import type { PluginLog } from '../dra/kubelet-plugin.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import { decodeAllocated, encodeAllocated, withContainers, type ContainerAllocated } from './allocated.js';

export class NodePods {
  private readonly informer: ListWatch<V1Pod>;
  private readonly changeListeners = new Set<() => void>();
  private readonly upsertListeners = new Set<(pod: V1Pod) => void>();
  private readonly deleteListeners = new Set<(pod: V1Pod) => void>();
  private restart: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopped = false;

  constructor(private readonly api: Pick<ApiClients, 'core' | 'watch'>, private readonly node: string, private readonly log: Pick<PluginLog, 'error'>) {
    const fieldSelector = `spec.nodeName=${node}`;
    this.informer = new ListWatch<V1Pod>('/api/v1/pods', api.watch, () => api.core.listPodForAllNamespaces({ fieldSelector }), false, undefined, fieldSelector);
    const changed = (): void => {
      this.failures = 0;
      for (const l of [...this.changeListeners]) l();
    };
    const upserted = (pod: V1Pod): void => {
      for (const l of [...this.upsertListeners]) l(pod);
      changed();
    };
    this.informer.on('add', upserted);
    this.informer.on('update', upserted);
    this.informer.on('delete', (pod) => {
      for (const l of [...this.deleteListeners]) l(pod);
      changed();
    });
    // The informer stops on an error other than 410: start it again, backing off to 30 s.
    this.informer.on('error', (err) => {
      if (this.stopped) return;
      this.failures += 1;
      const waitMs = Math.min(30_000, 250 * 2 ** Math.min(this.failures - 1, 7));
      this.log.error('the pod watch failed: listing again', { node: this.node, error: apiFailure(err).message, retryInMs: waitMs });
      this.restart = setTimeout(() => {
        this.restart = null;
        if (!this.stopped) void this.informer.start();
      }, waitMs);
    });
  }

  /** Lists and starts watching; resolves once the first list is in (or has failed: the watch retries by itself). */
  async start(): Promise<void> {
    await this.informer.start();
  }

  /** Whether a list has come in: until then "no pod" means "not known yet". */
  synced(): boolean {
    return this.informer.latestResourceVersion() !== '';
  }

  list(): readonly V1Pod[] {
    return this.informer.list();
  }

  /** Calls `listener` after each add, change or delete; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Calls `listener` with each pod added or changed (before the onChange listeners); returns the unsubscribe. */
  onUpsert(listener: (pod: V1Pod) => void): () => void {
    this.upsertListeners.add(listener);
    return () => this.upsertListeners.delete(listener);
  }

  onDelete(listener: (pod: V1Pod) => void): () => void {
    this.deleteListeners.add(listener);
    return () => this.deleteListeners.delete(listener);
  }

  /**
   * Records `containers` in the pod's gpushare.io/allocated annotation: a merge patch that names
   * the pod's uid and resourceVersion, so it lands only on the version it was computed from; on
   * a 409 the pod is read again and the patch recomputed. Resolves true when recorded, false when
   * the pod is gone (or is another pod of that name); throws after the retries are spent.
   */
  async recordAllocated(pod: { namespace: string; name: string; uid: string }, containers: readonly ContainerAllocated[]): Promise<boolean> {
    let current: V1Pod | undefined = this.informer.get(pod.name, pod.namespace);
    for (let attempt = 0; attempt < 8 && !this.stopped; attempt += 1) {
      try {
        if (current === undefined || current.metadata?.uid !== pod.uid) current = await this.api.core.readNamespacedPod({ name: pod.name, namespace: pod.namespace });
        if (current.metadata?.uid !== pod.uid) return false;
        const text = current.metadata?.annotations?.[GPUSHARE_ANNOTATION.allocated];
        const had = text === undefined ? null : decodeAllocated(text);
        const next = withContainers(had?.ok ? had.value : null, this.node, containers);
        if (had?.ok && had.value.containers.length === next.containers.length) return true;
        const body = { metadata: { uid: pod.uid, resourceVersion: current.metadata?.resourceVersion, annotations: { [GPUSHARE_ANNOTATION.allocated]: encodeAllocated(next) } } };
        await this.api.core.patchNamespacedPod({ name: pod.name, namespace: pod.namespace, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
        return true;
      } catch (e) {
        const f = apiFailure(e);
        if (f.code === 404) return false;
        if (f.code !== 409 && !isTransient(f)) throw new Error(`recording ${GPUSHARE_ANNOTATION.allocated} on pod ${pod.namespace}/${pod.name} failed: ${f.message}`);
        current = undefined; // out of date (409) or unknown: read it again
        if (isTransient(f)) await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
      }
    }
    throw new Error(`recording ${GPUSHARE_ANNOTATION.allocated} on pod ${pod.namespace}/${pod.name} failed: it kept changing or the API server kept failing`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restart !== null) clearTimeout(this.restart);
    this.restart = null;
    await this.informer.stop();
  }
}
