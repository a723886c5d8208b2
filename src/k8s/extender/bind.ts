/**
 * bind: decide where on the chosen node each container goes, hold it in the view, record the
 * decision on the pod (annotation, PATCH with uid and resourceVersion), then POST the Binding.
 *
 * Idempotent: a retry for the same pod uid finds the same decision (in the view, or on the pod)
 * and reserves nothing twice; concurrent calls for one pod share one attempt. No lock: the
 * decision and its reservation are made in one synchronous step (cluster-view.ts says why that
 * is enough), so 50 pods bound at once to one node each get room of their own or a refusal
 * that says the node is full, never the same GPU share twice.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { describeIssues } from '../../domain/index.js';
import { decodeDecision, encodeDecision, type PodDecision } from '../hami/decision.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import { parsePodGpuRequest, type PodGpuRequest } from '../hami/pod-request.js';
import { KubeApiError, type PodBinder } from './api.js';
import type { ClusterView, SuspendPolicy } from './cluster-view.js';
import { placementsOf } from './cluster-view.js';
import { containerDecisions, placePod, placementRequests } from './decide.js';
import type { ExtenderBindingArgs, ExtenderBindingResult } from './wire.js';

/** Conflicting writes (someone else updated the pod) retried before bind gives up. */
const PATCH_ATTEMPTS = 4;

export class PodBinding {
  private readonly inFlight = new Map<string, Promise<ExtenderBindingResult>>();

  constructor(
    private readonly view: ClusterView,
    private readonly api: PodBinder,
    private readonly suspendable: SuspendPolicy,
    private readonly now: () => number,
  ) {}

  /** Binds one pod; concurrent calls for the same uid share the first one's answer. */
  bind(args: ExtenderBindingArgs): Promise<ExtenderBindingResult> {
    const running = this.inFlight.get(args.PodUID);
    if (running) return running;
    const p = this.attempt(args).finally(() => this.inFlight.delete(args.PodUID));
    this.inFlight.set(args.PodUID, p);
    return p;
  }

  private async attempt(args: ExtenderBindingArgs): Promise<ExtenderBindingResult> {
    const ref = { namespace: args.PodNamespace, name: args.PodName };
    let pod: V1Pod;
    try {
      pod = await this.api.getPod(ref);
    } catch (e) {
      return { Error: `gpushare: cannot read pod ${ref.namespace}/${ref.name}: ${messageOf(e)}` };
    }
    if (pod.metadata?.uid !== args.PodUID) return { Error: `gpushare: pod ${ref.namespace}/${ref.name} is now uid ${pod.metadata?.uid ?? 'none'}, not ${args.PodUID}: it was replaced` };
    if (pod.spec?.nodeName) {
      return pod.spec.nodeName === args.Node ? { Error: '' } : { Error: `gpushare: pod ${ref.namespace}/${ref.name} is already bound to ${pod.spec.nodeName}` };
    }
    const parsed = parsePodGpuRequest(pod);
    if (!parsed.ok) return { Error: `gpushare: pod ${ref.namespace}/${ref.name} cannot be placed: ${describeIssues(parsed.issues)}` };
    const request = parsed.value;
    if (request === null) return this.post(ref, args, null);
    const decided = this.decide(pod, request, args.Node);
    if ('error' in decided) return { Error: decided.error };
    const { decision, reservedHere } = decided;
    const result = await this.record(pod, decision);
    if (result !== null) {
      if (reservedHere) this.view.release(args.PodUID);
      return { Error: result };
    }
    const posted = await this.post(ref, args, decision);
    if (posted.Error !== '') this.view.release(args.PodUID);
    return posted;
  }

  /**
   * The pod's decision on `node`: the one held already (a retry), the one on the pod (written
   * by an earlier attempt, maybe of an extender since restarted), or a new one, reserved at once.
   */
  private decide(pod: V1Pod, request: PodGpuRequest, node: string): { decision: PodDecision; reservedHere: boolean } | { error: string } {
    const uid = request.uid;
    const held = this.view.decisionOf(uid);
    if (held?.node === node) return { decision: held, reservedHere: false };
    const suspendable = this.suspendable({ namespace: request.namespace, priorityClassName: request.priorityClassName });
    const base = { uid, namespace: request.namespace, name: request.name };
    const written = pod.metadata?.annotations?.[GPUSHARE_ANNOTATION.decision];
    const earlier = written === undefined ? null : decodeDecision(written);
    if (earlier?.ok && earlier.value.podUid === uid && earlier.value.node === node && this.stillFits(earlier.value, request.priority, suspendable)) {
      this.view.reserve({ ...base, decision: earlier.value, placements: placementsOf(earlier.value, request.priority, suspendable) });
      return { decision: earlier.value, reservedHere: true };
    }
    if (held) this.view.release(uid);
    const fresh = this.view.snapshot();
    const requests = placementRequests(request, suspendable);
    const placed = placePod(fresh, node, request, requests);
    if (!placed.ok) return { error: `gpushare: node ${node} cannot take pod ${request.namespace}/${request.name} now: ${placed.message}` };
    const decision: PodDecision = { v: 1, podUid: uid, node, decidedAtMs: this.now(), containers: containerDecisions(fresh, request, placed.placements) };
    this.view.reserve({ ...base, decision, placements: placementsOf(decision, request.priority, suspendable) });
    return { decision, reservedHere: true };
  }

  /** Whether an earlier decision's GPUs still have its room (nothing else took it meanwhile). */
  private stillFits(d: PodDecision, priority: number, suspendable: boolean): boolean {
    const snapshot = this.view.snapshot();
    const i = snapshot.nodeByName.get(d.node);
    const node = i === undefined ? undefined : snapshot.nodes[i];
    if (!node) return false;
    for (const p of placementsOf(d, priority, suspendable)) {
      for (const g of p.gpus) {
        const spec = node.spec.gpus[g.gpu];
        const uuid = d.containers.find((c) => `${d.podUid}/${c.index}` === p.id)?.gpus.find((x) => x.index === g.gpu)?.uuid;
        if (!spec || spec.uuid !== uuid || spec.health !== 'ok' || node.gpuExclusive[g.gpu]) return false;
        if ((node.gpuMemoryFree[g.gpu] ?? 0) < g.memoryBytes || (node.gpuComputeFree[g.gpu] ?? 0) < g.computeMilli) return false;
        if (p.exclusive && (node.gpuSlices[g.gpu] ?? 0) > 0) return false;
      }
    }
    return true;
  }

  /** Writes the decision on the pod unless it is there already; null when done, else why not. */
  private async record(pod: V1Pod, decision: PodDecision): Promise<string | null> {
    const text = encodeDecision(decision);
    const ref = { namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '' };
    let current = pod;
    for (let attempt = 1; ; attempt++) {
      if (current.metadata?.annotations?.[GPUSHARE_ANNOTATION.decision] === text) return null;
      if (current.metadata?.uid !== decision.podUid) return `gpushare: pod ${ref.namespace}/${ref.name} was replaced while binding`;
      try {
        await this.api.annotatePod({ ...ref, uid: decision.podUid, resourceVersion: current.metadata?.resourceVersion ?? '' }, { [GPUSHARE_ANNOTATION.decision]: text });
        return null;
      } catch (e) {
        if (!(e instanceof KubeApiError && e.status === 409) || attempt >= PATCH_ATTEMPTS) return `gpushare: cannot record the decision on pod ${ref.namespace}/${ref.name}: ${messageOf(e)}`;
      }
      try {
        current = await this.api.getPod(ref);
      } catch (e) {
        return `gpushare: cannot read pod ${ref.namespace}/${ref.name}: ${messageOf(e)}`;
      }
    }
  }

  private async post(ref: { namespace: string; name: string }, args: ExtenderBindingArgs, decision: PodDecision | null): Promise<ExtenderBindingResult> {
    try {
      await this.api.bindPod({ ...ref, uid: args.PodUID }, args.Node);
      return { Error: '' };
    } catch (e) {
      // A retry of a bind whose Binding did land: the pod is bound where we meant it to be.
      if (e instanceof KubeApiError && e.status === 409) {
        const now = await this.api.getPod(ref).catch(() => null);
        if (now?.metadata?.uid === args.PodUID && now.spec?.nodeName === args.Node) return { Error: '' };
      }
      const what = decision === null ? '' : ` (decision recorded: ${decision.containers.map((c) => c.gpus.map((g) => g.uuid).join('+')).join(', ')})`;
      return { Error: `gpushare: binding pod ${ref.namespace}/${ref.name} to ${args.Node} failed: ${messageOf(e)}${what}` };
    }
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
