/**
 * What the node agent does about preemption on its node, decided as a pure function of the pods
 * it sees there (bound to it, or nominated to it) and its GPUs:
 *
 * - a pod carrying `gpushare.io/suspend-request` and no answer yet is suspended;
 * - a suspended pod is resumed when room returns on its GPUs: the slices of every other bound,
 *   running, unsuspended pod (their `gpushare.io/decision`, counted by the scheduler engine's
 *   own nodeState) leave room for its own. Candidates go by priority (highest first), then age
 *   (oldest first), and the first that does not fit stops the rest, so a large pod is never
 *   starved by smaller ones behind it;
 * - never while its preemptor is nominated here and not yet bound: the room it was suspended
 *   for is the preemptor's, even though no decision shows it yet.
 *
 * A suspended pod without a decision (it holds no slice the extender placed) resumes once its
 * preemptor is no longer on the node.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { Result } from '../../domain/index.js';
import { nodeState, type NodeSpec, type NodeState, type Placement } from '../../scheduler/index.js';
import { placementsOf } from '../extender/cluster-view.js';
import { decodeDecision, type PodDecision } from '../hami/decision.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import { gpuSpecOf, type NodeGpu } from '../hami/node-gpus.js';
import { decodeSuspendRequest, decodeSuspension, type Suspension, type SuspendRequest } from '../hami/suspension.js';

/** A pod as the plan needs it. */
export interface NodePod {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly priority: number;
  /** metadata.creationTimestamp, epoch ms. */
  readonly createdMs: number;
  /** spec.nodeName is this node (else it is only nominated here). */
  readonly bound: boolean;
  /** Succeeded, Failed, or being deleted. */
  readonly ended: boolean;
  /** Its valid decision for this node, or null. */
  readonly decision: PodDecision | null;
  readonly request: SuspendRequest | null;
  readonly suspension: Suspension | null;
}

export type SuspendAction =
  | { readonly kind: 'suspend'; readonly pod: NodePod; readonly preemptor: string }
  | { readonly kind: 'resume'; readonly pod: NodePod };

const UNLIMITED = Number.MAX_SAFE_INTEGER;

/** The actions to take now, suspensions first, resumptions in their order. */
export function planSuspensions(nodeName: string, gpus: readonly NodeGpu[], pods: readonly NodePod[]): SuspendAction[] {
  const actions: SuspendAction[] = [];
  for (const p of pods) {
    if (p.bound && !p.ended && p.request !== null && p.suspension === null) actions.push({ kind: 'suspend', pod: p, preemptor: p.request.preemptor });
  }
  const byUid = new Map(pods.map((p) => [p.uid, p]));
  const waiting = pods
    .filter((p) => p.bound && !p.ended && p.suspension?.state === 'suspended')
    .filter((p) => {
      const preemptor = byUid.get(p.suspension?.preemptor ?? '');
      // Its preemptor is on its way here: the room is promised to it.
      if (preemptor !== undefined && !preemptor.bound && !preemptor.ended) return false;
      return p.decision !== null || preemptor === undefined || preemptor.ended;
    })
    .sort((a, b) => b.priority - a.priority || a.createdMs - b.createdMs || (a.uid < b.uid ? -1 : 1));
  if (waiting.length === 0) return actions;

  const spec: NodeSpec = { name: nodeName, cpuMilli: UNLIMITED, memoryBytes: UNLIMITED, gpus: gpus.map(gpuSpecOf) };
  const held: Placement[] = [];
  for (const p of pods) {
    if (!p.bound || p.ended || p.decision === null || p.suspension?.state === 'suspended') continue;
    if (p.request !== null && p.suspension === null) continue; // being suspended in this same pass
    held.push(...placementsOn(spec, p));
  }
  let state = nodeState(spec, 0, held);
  for (const p of waiting) {
    const mine = p.decision === null ? [] : placementsOn(spec, p);
    if (p.decision !== null && mine.length === 0) break; // its GPUs are gone from the node: it cannot come back here
    if (!mine.every((placement) => fits(state, placement))) break;
    actions.push({ kind: 'resume', pod: p });
    held.push(...mine);
    state = nodeState(spec, 0, held);
  }
  return actions;
}

/** A pod's placements, or none when its decision names GPUs the node does not list. */
function placementsOn(spec: NodeSpec, p: NodePod): Placement[] {
  const d = p.decision;
  if (d === null) return [];
  const placements = placementsOf(d, p.priority, true);
  return placements.every((pl) => pl.gpus.every((g) => g.gpu < spec.gpus.length)) ? placements : [];
}

function fits(state: NodeState, placement: Placement): boolean {
  return placement.gpus.every((share) => {
    const i = share.gpu;
    const gpu = state.spec.gpus[i];
    if (gpu === undefined || gpu.health !== 'ok' || state.gpuExclusive[i]) return false;
    if (placement.exclusive && (state.gpuSlices[i] ?? 0) > 0) return false;
    return (state.gpuMemoryFree[i] ?? 0) >= share.memoryBytes && (state.gpuComputeFree[i] ?? 0) >= share.computeMilli;
  });
}

/**
 * A watched pod as the plan sees it. Malformed annotations count as absent (the extender wrote
 * them; a bad one is not this agent's to act on): a bad request is no request, a bad decision no
 * slice held.
 */
export function nodePodOf(pod: V1Pod, nodeName: string): NodePod | null {
  const uid = pod.metadata?.uid;
  if (!uid) return null;
  const annotations = pod.metadata?.annotations ?? {};
  const decoded = <T>(text: string | undefined, decode: (t: string) => Result<T>): T | null => {
    if (text === undefined) return null;
    const r = decode(text);
    return r.ok ? r.value : null;
  };
  const decision = decoded(annotations[GPUSHARE_ANNOTATION.decision], decodeDecision);
  const request = decoded(annotations[GPUSHARE_ANNOTATION.suspendRequest], decodeSuspendRequest);
  const phase = pod.status?.phase;
  const created = pod.metadata?.creationTimestamp;
  return {
    uid,
    namespace: pod.metadata?.namespace ?? 'default',
    name: pod.metadata?.name ?? '',
    priority: typeof pod.spec?.priority === 'number' ? pod.spec.priority : 0,
    createdMs: created === undefined ? 0 : new Date(created).getTime() || 0,
    bound: pod.spec?.nodeName === nodeName,
    ended: phase === 'Succeeded' || phase === 'Failed' || pod.metadata?.deletionTimestamp !== undefined,
    decision: decision !== null && decision.podUid === uid && decision.node === nodeName ? decision : null,
    request: request !== null && request.node === nodeName ? request : null,
    suspension: decoded(annotations[GPUSHARE_ANNOTATION.suspended], decodeSuspension),
  };
}
