/**
 * Keeps a node's ResourceSlices current in the API server: lists this driver's slices for the
 * node, plans the difference (publisher-plan.ts), writes it (creates and updates at the new
 * pool generation first, deletes of stale slices last, so the pool is never seen short), then
 * watches them: a change or delete by anyone else, a dropped watch or a 410 Expired, and a new
 * inventory all lead to the same list-plan-write again. A 409 (someone wrote in between) means
 * read again; a 5xx, a 429 or no answer means try again; both after a capped exponential backoff.
 * Every write is one structured log line.
 */
import type { V1ResourceSlice } from '@kubernetes/client-node';
import { apiFailure, isTransient, type ApiClients } from '../api/client.js';
import { DRIVER_NAME } from './names.js';
import { planSlices, type SlicePlan } from './publisher-plan.js';
import { buildResourceSlices, type LayoutConfig, type SliceInventory } from './slices.js';

/** A pino-compatible logger: one object of fields and a message per line. */
export interface PublisherLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface PublisherOptions {
  readonly api: Pick<ApiClients, 'resource' | 'watch'>;
  readonly nodeName: string;
  /** The Node's uid: slices are owned by the Node, so they go when it does. */
  readonly nodeUid?: string;
  readonly layout: LayoutConfig;
  readonly inventory: SliceInventory;
  readonly log: PublisherLog;
  readonly driverName?: string;
  /** Backoff after a failure: doubles from initialMs up to maxMs (defaults 200 ms and 30 s). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

const SLICES_PATH = '/apis/resource.k8s.io/v1/resourceslices';

/** Thrown inside a sync to make the loop read again (409) or wait and retry (transient). */
class SyncFailed extends Error {
  constructor(readonly step: string, readonly code: number, message: string) {
    super(message);
  }
}

export class SlicePublisher {
  private inventory: SliceInventory;
  private readonly driverName: string;
  private readonly fieldSelector: string;
  private readonly backoff: { readonly initialMs: number; readonly maxMs: number };
  private dirty = false;
  private loop: Promise<void> | null = null;
  private stopped = false;
  private failures = 0;
  private watchDrops = 0;
  private watching: AbortController | null = null;
  private watchStarting = false;
  private timer: { handle: NodeJS.Timeout; wake: () => void } | null = null;
  private rewatch: NodeJS.Timeout | null = null;
  /** resourceVersions our own writes produced: their watch events are not someone else's change. */
  private readonly ownVersions = new Set<string>();
  private lastPlan: SlicePlan | null = null;

  constructor(private readonly options: PublisherOptions) {
    this.driverName = options.driverName ?? DRIVER_NAME;
    this.fieldSelector = `spec.nodeName=${options.nodeName},spec.driver=${this.driverName}`;
    this.backoff = options.backoff ?? { initialMs: 200, maxMs: 30_000 };
    this.wanted(options.inventory);
    this.inventory = options.inventory;
  }

  /** Publishes, then keeps publishing until stop(); resolves once the first sync has succeeded. */
  async start(): Promise<void> {
    this.kick();
    await this.settled();
  }

  /** A new inventory (a GPU lost or back, a driver update). Throws, changing nothing, if it cannot be published. */
  setInventory(inventory: SliceInventory): void {
    this.wanted(inventory);
    this.inventory = inventory;
    this.options.log.info({ event: 'dra.inventory', node: this.options.nodeName, gpus: inventory.gpus.length, healthy: inventory.gpus.filter((g) => g.health === 'ok').length }, 'GPU inventory changed: republishing ResourceSlices');
    this.kick();
  }

  /** Resolves when no sync is running or pending (tests; start()). */
  async settled(): Promise<void> {
    while (this.loop !== null) await this.loop;
  }

  /** The last plan written (null before the first): its generation is the pool's. */
  get published(): SlicePlan | null {
    return this.lastPlan;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watching?.abort();
    this.watching = null;
    if (this.rewatch) clearTimeout(this.rewatch);
    if (this.timer) {
      clearTimeout(this.timer.handle);
      this.timer.wake();
    }
    await this.settled();
  }

  private wanted(inventory: SliceInventory): V1ResourceSlice[] {
    const slices = buildResourceSlices({ nodeName: this.options.nodeName, inventory, layout: this.options.layout, generation: 0, driverName: this.driverName });
    const uid = this.options.nodeUid;
    if (uid === undefined) return slices;
    return slices.map((s) => ({ ...s, metadata: { ...s.metadata, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.options.nodeName, uid, controller: true }] } }));
  }

  private kick(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (this.loop === null) this.loop = this.run().finally(() => { this.loop = null; });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => { this.timer = null; resolve(); };
      this.timer = { handle: setTimeout(wake, ms), wake };
    });
  }

  private delay(attempt: number): number {
    return Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.max(0, attempt - 1));
  }

  private async run(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      try {
        const listVersion = await this.syncOnce();
        this.failures = 0;
        if (this.watching === null && !this.watchStarting) await this.startWatch(listVersion);
      } catch (err) {
        this.failures += 1;
        const failure = err instanceof SyncFailed ? err : new SyncFailed('sync', apiFailure(err).code, apiFailure(err).message);
        const waitMs = this.delay(this.failures);
        this.options.log.warn({ event: 'dra.slices.retry', node: this.options.nodeName, step: failure.step, code: failure.code, reason: failure.message, attempt: this.failures, retryInMs: waitMs },
          failure.code === 409 ? 'ResourceSlices changed under the publisher: reading them again' : 'ResourceSlice write failed: trying again');
        this.dirty = true;
        await this.sleep(waitMs);
      }
    }
  }

  /** One list-plan-write; returns the list's resourceVersion for the watch. */
  private async syncOnce(): Promise<string> {
    const { resource } = this.options.api;
    const list = await this.call('list', () => resource.listResourceSlice({ fieldSelector: this.fieldSelector }));
    const plan = planSlices(this.wanted(this.inventory), list.items);
    const base = { node: this.options.nodeName, pool: this.options.nodeName, generation: plan.generation };
    for (const slice of plan.create) {
      const name = slice.metadata?.name;
      const made = await this.call(`create ${name}`, () => resource.createResourceSlice({ body: slice }));
      this.own(made);
      this.options.log.info({ event: 'dra.slice.created', ...base, slice: name, devices: slice.spec.devices?.length ?? 0 }, 'ResourceSlice created');
    }
    for (const slice of plan.update) {
      const name = slice.metadata?.name ?? '';
      const made = await this.call(`update ${name}`, () => resource.replaceResourceSlice({ name, body: slice }));
      this.own(made);
      this.options.log.info({ event: 'dra.slice.updated', ...base, slice: name, devices: slice.spec.devices?.length ?? 0 }, 'ResourceSlice updated');
    }
    for (const stale of plan.delete) {
      const preconditions = stale.resourceVersion !== undefined ? { preconditions: { resourceVersion: stale.resourceVersion } } : {};
      try {
        await this.call(`delete ${stale.name}`, () => resource.deleteResourceSlice({ name: stale.name, body: preconditions }));
      } catch (err) {
        if (!(err instanceof SyncFailed && err.code === 404)) throw err;
      }
      this.options.log.info({ event: 'dra.slice.deleted', ...base, slice: stale.name }, 'stale ResourceSlice deleted');
    }
    this.lastPlan = plan;
    return list.metadata?.resourceVersion ?? '';
  }

  private own(slice: V1ResourceSlice): void {
    const version = slice.metadata?.resourceVersion;
    if (version !== undefined) this.ownVersions.add(version);
    if (this.ownVersions.size > 1024) this.ownVersions.delete(this.ownVersions.values().next().value as string);
  }

  private async call<T>(step: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const failure = apiFailure(err);
      if (failure.code === 409 || failure.code === 404 || isTransient(failure)) throw new SyncFailed(step, failure.code, failure.message);
      // A 4xx other than those is a bug in what we send: say so, and keep retrying slowly.
      throw new SyncFailed(step, failure.code, `${failure.reason || 'rejected'}: ${failure.message}`);
    }
  }

  private async startWatch(fromVersion: string): Promise<void> {
    this.watchStarting = true;
    const startedAt = Date.now();
    let delivered = false;
    const onEvent = (type: string, obj: { metadata?: { name?: string; resourceVersion?: string }; code?: number }) => {
      if (type === 'BOOKMARK') return;
      delivered = true;
      if (type === 'ERROR') {
        this.options.log.warn({ event: 'dra.watch.expired', node: this.options.nodeName, code: obj.code }, 'ResourceSlice watch expired: reading them again');
        this.watching?.abort();
        return;
      }
      const version = obj.metadata?.resourceVersion;
      if (version !== undefined && this.ownVersions.has(version)) return;
      this.options.log.info({ event: 'dra.slice.external', node: this.options.nodeName, type, slice: obj.metadata?.name }, 'ResourceSlice changed by someone else: republishing');
      this.kick();
    };
    let ended = false;
    const onDone = (err: unknown) => {
      ended = true;
      this.watching = null;
      if (this.stopped) return;
      const lasted = Date.now() - startedAt;
      this.watchDrops = delivered || lasted > 10_000 ? 1 : this.watchDrops + 1;
      const waitMs = this.watchDrops > 1 ? this.delay(this.watchDrops - 1) : 0;
      this.options.log.warn({ event: 'dra.watch.closed', node: this.options.nodeName, reason: err ? apiFailure(err).message : 'closed by the server', retryInMs: waitMs }, 'ResourceSlice watch ended: reading them again');
      if (waitMs === 0) {
        this.kick();
      } else {
        this.rewatch = setTimeout(() => { this.rewatch = null; this.kick(); }, waitMs);
      }
    };
    try {
      const controller = await this.options.api.watch.watch(SLICES_PATH, { fieldSelector: this.fieldSelector, resourceVersion: fromVersion, allowWatchBookmarks: true }, onEvent, onDone);
      // A watch that failed to start has already called onDone: keep no controller for it.
      if (!ended) this.watching = controller;
      if (this.stopped) controller.abort();
    } finally {
      this.watchStarting = false;
    }
  }
}
