/**
 * The classic path's view of the node's GPUs (`gpushare.io/node-gpus` on the Node), made from
 * the same inventory and the same LayoutConfig as the ResourceSlices (publishedDevices), so the
 * extender and the kube-scheduler's DRA allocator see the same GPUs with the same capacities.
 * Unlike a slice, the annotation keeps an unhealthy GPU, marked `lost` (its GPUs are listed by
 * index from 0, and `lost` is how the extender learns to place nothing there).
 */
import { PatchStrategy, setHeaderOptions, type CoreV1Api } from '@kubernetes/client-node';
import type { Gpu } from '../../domain/gpu.js';
import { apiFailure } from '../api/client.js';
import { publishedDevices, type LayoutConfig, type PublishedDevice } from '../dra/slices.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import { encodeNodeGpus, type NodeGpu } from '../hami/node-gpus.js';
import type { AgentLog } from './log.js';

const MIB = 2 ** 20;

/** The annotation's GPUs: memory is what the layout publishes of each GPU in all. */
export function nodeGpusOf(gpus: readonly Gpu[], layout: LayoutConfig): NodeGpu[] {
  const devices = new Map<number, PublishedDevice[]>();
  for (const d of publishedDevices(gpus, layout)) devices.set(d.gpu.index, [...(devices.get(d.gpu.index) ?? []), d]);
  const published = new Map<number, number>();
  for (const [index, list] of devices) {
    if (layout.kind === 'consumable') {
      published.set(index, list[0]?.memoryBytes ?? 0);
      continue;
    }
    // The fixed layout publishes each partition count side by side, `parts` devices of it in
    // turn: the GPU is the most any one count covers.
    let at = 0;
    let most = 0;
    for (const parts of layout.partitions) {
      most = Math.max(most, (list[at]?.memoryBytes ?? 0) * parts);
      at += parts;
    }
    published.set(index, most);
  }
  return [...gpus].sort((a, b) => a.index - b.index).map((g) => ({
    index: g.index,
    uuid: g.uuid,
    model: g.model,
    name: g.name,
    memoryMiB: Math.max(1, Math.floor((published.get(g.index) ?? g.memoryTotalBytes) / MIB)),
    health: g.health === 'ok' ? 'ok' : 'lost',
    numaNode: g.numaNode,
  }));
}

/**
 * Writes the annotation on the agent's Node whenever its value changes (a JSON merge patch of
 * that one annotation: nothing else of the Node is touched). A failed write is retried with a
 * capped exponential backoff until it lands or a newer value replaces it.
 */
export class NodeGpusAnnotation {
  private wanted: string | null = null;
  private written: string | null = null;
  private running: Promise<void> | null = null;
  private sleeping: { readonly timer: NodeJS.Timeout; readonly wake: () => void } | null = null;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly core: Pick<CoreV1Api, 'patchNode'>,
    private readonly nodeName: string,
    private readonly log: AgentLog,
    private readonly backoff = { initialMs: 200, maxMs: 30_000 },
  ) {}

  /** The value now on the Node as this agent last wrote it (null before the first write). */
  get current(): string | null {
    return this.written;
  }

  /** Publishes `gpus`; resolves once this value (or a newer one) is written, or the publisher stops. */
  async set(gpus: readonly NodeGpu[]): Promise<void> {
    this.wanted = encodeNodeGpus(gpus);
    if (this.wanted === this.written) return;
    this.running ??= this.write().finally(() => { this.running = null; });
    await this.running;
  }

  stop(): void {
    this.stopped = true;
    if (this.sleeping !== null) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.wake();
    }
  }

  private async write(): Promise<void> {
    while (!this.stopped && this.wanted !== null && this.wanted !== this.written) {
      const value = this.wanted;
      try {
        await this.core.patchNode({ name: this.nodeName, body: { metadata: { annotations: { [GPUSHARE_ANNOTATION.nodeGpus]: value } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
        this.written = value;
        this.failures = 0;
        this.log.info({ event: 'agent.node-gpus.written', node: this.nodeName, gpus: (JSON.parse(value) as { gpus: unknown[] }).gpus.length }, 'node GPUs annotation written');
      } catch (e) {
        this.failures += 1;
        const failure = apiFailure(e);
        const waitMs = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (this.failures - 1));
        this.log.warn({ event: 'agent.node-gpus.retry', node: this.nodeName, code: failure.code, reason: failure.message, retryInMs: waitMs }, 'writing the node GPUs annotation failed: trying again');
        await new Promise<void>((resolve) => {
          const wake = (): void => { this.sleeping = null; resolve(); };
          this.sleeping = { timer: setTimeout(wake, waitMs), wake };
        });
      }
    }
  }
}
