/**
 * Preemption that keeps the work, node side: watches the pods bound or nominated to this node,
 * asks suspend-plan.ts what to do, and does it. A suspension finds the pod's GPU processes
 * through its slices' regions (pod-processes.ts) and suspends each of their process groups with
 * the daemon's own suspendGroup (CUDA checkpoint: lock, checkpoint, SIGSTOP); then the pod gets
 * `gpushare.io/suspended` (state suspended: the extender's view frees its room and the preemptor
 * binds) and loses its request. A suspension that cannot be done is answered `failed` with the
 * reason, and the pod is evicted through the Eviction API (disruption budgets apply) when the
 * configuration allows. A resumption removes the annotation first (the room is held again
 * before the process needs it), then resumeGroup (SIGCONT, restore, unlock).
 *
 * Restart-safe: the annotations are the truth of what was answered, and a small file records
 * the process groups of suspensions in flight or done; suspendGroup and resumeGroup converge
 * from any mix of per-process states, so a step killed halfway is simply done again.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CoreV1Api, ListWatch, PatchStrategy, setHeaderOptions, Watch, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { z } from 'zod';
import type { CheckpointApi } from '../../gpu/checkpoint.js';
import { resumeGroup, suspendGroup } from '../../node/suspend.js';
import { apiFailure } from '../api/client.js';
import { writeFileAtomic } from '../cdi/write.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import type { NodeGpu } from '../hami/node-gpus.js';
import { encodeSuspension } from '../hami/suspension.js';
import type { AgentLog } from './log.js';
import { podProcessGroups, type RegionLocator } from './pod-processes.js';
import { nodePodOf, planSuspensions, type NodePod } from './suspend-plan.js';

export interface SuspenderOptions {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: string;
  /** The CUDA checkpoint API, or why there is none (every suspension then fails with that reason). */
  readonly checkpoint: { readonly ok: true; readonly value: CheckpointApi } | { readonly ok: false; readonly error: { readonly message: string } };
  readonly locator: RegionLocator;
  /** The node's GPUs as the annotation publishes them (room is counted against these). */
  readonly gpus: () => readonly NodeGpu[];
  readonly lockTimeoutMs: number;
  readonly evictOnFailure: boolean;
  readonly stateFile: string;
  readonly log: AgentLog;
  readonly now?: () => number;
  /** After a failed resume, how long before the pod is tried again (default 30 s). */
  readonly resumeRetryMs?: number;
}

const StateSchema = z.strictObject({
  v: z.literal(1),
  pods: z.record(z.string(), z.strictObject({
    namespace: z.string(),
    name: z.string(),
    pgids: z.array(z.int().positive()),
    step: z.enum(['suspending', 'suspended', 'resuming']),
  })),
});
type State = z.infer<typeof StateSchema>;
type Entry = State['pods'][string];

export class Suspender {
  private readonly core: CoreV1Api;
  private readonly watches: ListWatch<V1Pod>[] = [];
  private state: State = { v: 1, pods: {} };
  private dirty = false;
  private listed = false;
  private loop: Promise<void> | null = null;
  private stopped = false;
  private readonly resumeFailedAt = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly options: SuspenderOptions) {
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.now = options.now ?? Date.now;
  }

  /** Reads the state file, lists and watches the node's pods, and does a first pass. */
  async start(): Promise<void> {
    this.state = readState(this.options.stateFile, this.options.log);
    const watch = new Watch(this.options.kubeConfig);
    for (const field of ['spec.nodeName', 'status.nominatedNodeName']) {
      const fieldSelector = `${field}=${this.options.nodeName}`;
      const lw = new ListWatch<V1Pod>('/api/v1/pods', watch, () => this.core.listPodForAllNamespaces({ fieldSelector }), false, undefined, fieldSelector);
      for (const verb of ['add', 'update', 'delete'] as const) lw.on(verb, () => this.kick());
      lw.on('error', (e: unknown) => {
        this.options.log.warn({ event: 'agent.pods.watch', node: this.options.nodeName, field, reason: apiFailure(e).message }, 'pod watch failed: listing again');
        // client-node's ListWatch stops on an error: start it again after a breath.
        setTimeout(() => { if (!this.stopped) lw.start().catch(() => undefined); }, 1000).unref();
      });
      this.watches.push(lw);
    }
    await Promise.all(this.watches.map((w) => w.start()));
    this.listed = true;
    this.kick();
    await this.settled();
  }

  /** Whether the pod is suspended now (its processes checkpointed and stopped); the monitor shows its slices so. */
  isSuspended(podUid: string): boolean {
    return this.state.pods[podUid]?.step === 'suspended';
  }

  /** The pods bound to this node as the watch knows them now (the monitor labels DRA slices with them: node-pods.ts' NodePods). */
  boundPods(): readonly V1Pod[] {
    return this.watches[0]?.list() ?? [];
  }

  /** Resolves when no pass is running or pending. */
  async settled(): Promise<void> {
    while (this.loop !== null) await this.loop;
  }

  /** Asks for a pass (the GPUs changed, a pod changed). */
  kick(): void {
    // Not before both lists are in: a pass over half the pods could resume a pod whose
    // preemptor is only in the other list.
    if (this.stopped || !this.listed) return;
    this.dirty = true;
    this.loop ??= this.run().finally(() => { this.loop = null; });
  }

  /** Stops watching; suspended pods stay suspended (the file and the annotations carry them). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.watches.map((w) => w.stop()));
    await this.settled();
  }

  private pods(): NodePod[] {
    const seen = new Map<string, { pod: V1Pod; view: NodePod }>();
    for (const w of this.watches) {
      for (const pod of w.list()) {
        const view = nodePodOf(pod, this.options.nodeName);
        if (view !== null && !(seen.get(view.uid)?.view.bound ?? false)) seen.set(view.uid, { pod, view });
      }
    }
    this.podObjects = new Map([...seen].map(([uid, v]) => [uid, v.pod]));
    return [...seen.values()].map((v) => v.view);
  }

  private podObjects = new Map<string, V1Pod>();
  /** Every pod seen here, uid to name: a preemptor missing from both lists is read back by name. */
  private readonly seenRefs = new Map<string, { namespace: string; name: string }>();

  /**
   * `pods` plus the preemptors of suspended pods that are in neither list but still exist here.
   * The two watches report a pod moving from nominated to bound as a delete in one and an add in
   * the other, in no set order: between the two, the preemptor would look gone and its room free.
   */
  private async withPreemptors(pods: NodePod[]): Promise<NodePod[]> {
    for (const p of pods) this.seenRefs.set(p.uid, { namespace: p.namespace, name: p.name });
    const have = new Set(pods.map((p) => p.uid));
    const out = [...pods];
    for (const p of pods) {
      const uid = p.suspension?.state === 'suspended' ? p.suspension.preemptor : '';
      const ref = this.seenRefs.get(uid);
      if (ref === undefined || have.has(uid)) continue;
      have.add(uid);
      try {
        const fresh = await this.core.readNamespacedPod(ref);
        const view = fresh.metadata?.uid === uid ? nodePodOf(fresh, this.options.nodeName) : null;
        if (view !== null && (view.bound || fresh.status?.nominatedNodeName === this.options.nodeName)) {
          out.push(view);
          this.podObjects.set(uid, fresh);
          continue;
        }
      } catch (e) {
        if (apiFailure(e).code !== 404) throw e; // unknown: no pass on a guess; the failure is logged and the next event retries
      }
      this.seenRefs.delete(uid);
    }
    return out;
  }

  private async run(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      try {
        await this.pass();
      } catch (e) {
        this.options.log.error({ event: 'agent.suspend.pass', node: this.options.nodeName, error: (e as Error).message }, 'preemption pass failed: trying again in a second');
        setTimeout(() => this.kick(), 1000).unref();
      }
    }
  }

  private async pass(): Promise<void> {
    const pods = await this.withPreemptors(this.pods());
    const live = new Set(pods.filter((p) => !p.ended).map((p) => p.uid));
    // Finish what a previous run left halfway: a resume interrupted after its annotation went,
    // or processes stopped that nothing asks to keep suspended any more.
    for (const [uid, entry] of Object.entries(this.state.pods)) {
      const pod = pods.find((p) => p.uid === uid);
      if (pod === undefined || !live.has(uid)) {
        this.forget(uid); // the pod is gone: nothing of it to resume
        continue;
      }
      if (pod.suspension?.state !== 'suspended' && pod.request === null) await this.resume(pod, entry);
    }
    const now = this.now();
    const retryMs = this.options.resumeRetryMs ?? 30_000;
    for (const action of planSuspensions(this.options.nodeName, this.options.gpus(), pods)) {
      if (this.stopped) return;
      if (action.kind === 'suspend') await this.suspend(action.pod, action.preemptor);
      else if (now - (this.resumeFailedAt.get(action.pod.uid) ?? -Infinity) >= retryMs) await this.resume(action.pod, this.state.pods[action.pod.uid]);
    }
  }

  private async suspend(pod: NodePod, preemptor: string): Promise<void> {
    const fields = { node: this.options.nodeName, pod: `${pod.namespace}/${pod.name}`, uid: pod.uid, preemptor };
    const object = this.podObjects.get(pod.uid);
    const regions = object === undefined ? [] : this.options.locator.regionsOf(object);
    const found = podProcessGroups(regions);
    const checkpoint = this.options.checkpoint;
    if (!checkpoint.ok) return this.failed(pod, preemptor, `the CUDA checkpoint API is not available on this node: ${checkpoint.error.message}`);
    const known = this.state.pods[pod.uid]?.pgids ?? [];
    const pgids = [...new Set([...known, ...found.pgids])].sort((a, b) => a - b);
    if (pgids.length === 0) {
      const why = regions.length === 0 ? 'no slice region of the pod is known on this node' : `no live process is attached to its slices' regions (${regions.join(', ')})${found.unreadable.length > 0 ? `: ${found.unreadable.map((u) => u.error).join('; ')}` : ''}`;
      return this.failed(pod, preemptor, `no GPU process of the pod was found to suspend: ${why}`);
    }
    this.record(pod, { namespace: pod.namespace, name: pod.name, pgids, step: 'suspending' });
    this.options.log.info({ event: 'agent.suspend.start', ...fields, pgids }, 'suspending a pod for a preemptor');
    const done: number[] = [];
    for (const pgid of pgids) {
      const r = await suspendGroup(checkpoint.value, pgid, this.options.lockTimeoutMs);
      if (!r.ok) {
        for (const back of done) await resumeGroup(checkpoint.value, back, []);
        this.forget(pod.uid);
        return this.failed(pod, preemptor, `suspending process group ${pgid} failed: ${r.error.message} (${r.error.code})`);
      }
      done.push(pgid);
    }
    this.record(pod, { namespace: pod.namespace, name: pod.name, pgids, step: 'suspended' });
    const answered = await this.annotate(pod, { [GPUSHARE_ANNOTATION.suspended]: encodeSuspension({ v: 1, state: 'suspended', preemptor, atMs: this.now() }), [GPUSHARE_ANNOTATION.suspendRequest]: null });
    if (answered) this.options.log.info({ event: 'agent.suspend.done', ...fields, pgids }, 'pod suspended: its slices hold no room until it resumes');
  }

  /** Answers `failed` (and why), then evicts the pod if the configuration says so. */
  private async failed(pod: NodePod, preemptor: string, reason: string): Promise<void> {
    const fields = { node: this.options.nodeName, pod: `${pod.namespace}/${pod.name}`, uid: pod.uid, preemptor, reason };
    this.options.log.warn({ event: 'agent.suspend.failed', ...fields, evict: this.options.evictOnFailure }, 'pod could not be suspended');
    await this.annotate(pod, { [GPUSHARE_ANNOTATION.suspended]: encodeSuspension({ v: 1, state: 'failed', preemptor, atMs: this.now(), reason: reason.slice(0, 1024) }), [GPUSHARE_ANNOTATION.suspendRequest]: null });
    if (!this.options.evictOnFailure) return;
    try {
      await this.core.createNamespacedPodEviction({
        name: pod.name,
        namespace: pod.namespace,
        body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod.name, namespace: pod.namespace }, deleteOptions: { preconditions: { uid: pod.uid } } },
      });
      this.options.log.info({ event: 'agent.suspend.evicted', ...fields }, 'pod evicted instead of suspended');
    } catch (e) {
      const f = apiFailure(e);
      // 429: a disruption budget forbids it now; the preemptor waits, and the extender may choose again.
      this.options.log.warn({ event: 'agent.suspend.evict-failed', ...fields, code: f.code, error: f.message }, 'evicting the pod failed');
    }
  }

  private async resume(pod: NodePod, entry: Entry | undefined): Promise<void> {
    const fields = { node: this.options.nodeName, pod: `${pod.namespace}/${pod.name}`, uid: pod.uid };
    const checkpoint = this.options.checkpoint;
    if (!checkpoint.ok) return;
    const object = this.podObjects.get(pod.uid);
    // The file lost (a new node disk): the stopped processes are still attached to their regions.
    const pgids = entry?.pgids ?? podProcessGroups(object === undefined ? [] : this.options.locator.regionsOf(object)).pgids;
    this.record(pod, { namespace: pod.namespace, name: pod.name, pgids: [...pgids], step: 'resuming' });
    if (pod.suspension !== null && !(await this.annotate(pod, { [GPUSHARE_ANNOTATION.suspended]: null }))) return;
    for (const pgid of pgids) {
      const r = await resumeGroup(checkpoint.value, pgid, []);
      if (!r.ok) {
        // Left suspended by resumeGroup itself: say so again, so the room stays free, and try later.
        this.resumeFailedAt.set(pod.uid, this.now());
        this.record(pod, { namespace: pod.namespace, name: pod.name, pgids: [...pgids], step: 'suspended' });
        await this.annotate(pod, { [GPUSHARE_ANNOTATION.suspended]: encodeSuspension({ v: 1, state: 'suspended', preemptor: pod.suspension?.preemptor ?? '', atMs: this.now(), reason: `resume failed: ${r.error.message}`.slice(0, 1024) }) });
        this.options.log.warn({ event: 'agent.resume.failed', ...fields, pgid, error: r.error.message, code: r.error.code }, 'resuming a pod failed: it stays suspended');
        return;
      }
    }
    this.forget(pod.uid);
    this.resumeFailedAt.delete(pod.uid);
    this.options.log.info({ event: 'agent.resume.done', ...fields, pgids }, 'pod resumed: room returned on its GPUs');
  }

  /** Merge-patches the pod's annotations (null removes one), only if it is still the same pod. */
  private async annotate(pod: NodePod, annotations: Record<string, string | null>): Promise<boolean> {
    try {
      await this.core.patchNamespacedPod({ name: pod.name, namespace: pod.namespace, body: { metadata: { uid: pod.uid, annotations } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      return true;
    } catch (e) {
      const f = apiFailure(e);
      this.options.log.warn({ event: 'agent.pod.annotate', node: this.options.nodeName, pod: `${pod.namespace}/${pod.name}`, code: f.code, error: f.message }, 'writing the pod\'s suspension annotations failed: the next pass tries again');
      if (f.code !== 404) setTimeout(() => this.kick(), 1000).unref();
      return false;
    }
  }

  private record(pod: NodePod, entry: Entry): void {
    this.state = { v: 1, pods: { ...this.state.pods, [pod.uid]: entry } };
    this.save();
  }

  private forget(uid: string): void {
    if (!(uid in this.state.pods)) return;
    const { [uid]: _gone, ...rest } = this.state.pods;
    this.state = { v: 1, pods: rest };
    this.save();
  }

  private save(): void {
    mkdirSync(dirname(this.options.stateFile), { recursive: true });
    writeFileAtomic(this.options.stateFile, `${JSON.stringify(this.state)}\n`, 0o600);
  }
}

/** The state file, or an empty state (with a warning) when it is missing or unreadable. */
function readState(path: string, log: AgentLog): State {
  if (!existsSync(path)) return { v: 1, pods: {} };
  try {
    const parsed = StateSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (parsed.success) return parsed.data;
    log.warn({ event: 'agent.suspend.state', path, error: parsed.error.issues[0]?.message }, 'suspension state file is not valid: starting from the annotations alone');
  } catch (e) {
    log.warn({ event: 'agent.suspend.state', path, error: (e as Error).message }, 'suspension state file cannot be read: starting from the annotations alone');
  }
  return { v: 1, pods: {} };
}
