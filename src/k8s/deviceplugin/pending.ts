/**
 * Which pod an Allocate is for, pure. The kubelet's request names device IDs, not the pod; but
 * it admits the pods bound to its node one at a time, in the order they arrive, and allocates
 * a pod's containers in order. So the container being admitted is the next unserved GPU
 * container (lowest index) of the oldest pod bound to this node that is still pending, whose
 * extender decision (`gpushare.io/decision`) is present and is for this pod and node, and whose
 * container asks for as many GPUs as the kubelet is allocating. "Oldest" is the extender's
 * decision time (bind order, which is the order the kubelet sees the pods), then creation.
 *
 * What this cannot know: two pods decided in the same instant and admitted in the other order
 * swap decisions. HAMi has the same limit; the count check keeps the swap between like pods.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { describeIssues } from '../../domain/result.js';
import type { Result } from '../../domain/result.js';
import { decodeDecision, type ContainerDecision, type PodDecision } from '../hami/decision.js';
import { GPUSHARE_ANNOTATION, RESOURCE } from '../hami/names.js';
import { allocatedIndexes } from './allocated.js';

/** A pod's container waiting for its Allocate. */
export interface PendingContainer {
  readonly pod: { readonly namespace: string; readonly name: string; readonly uid: string };
  readonly decision: PodDecision;
  readonly container: ContainerDecision;
}

/** Why a pod bound to the node is not the one: shown in the error when no pod is. */
export interface Passed {
  readonly pod: string;
  readonly why: string;
}

export type PendingChoice = { readonly found: PendingContainer } | { readonly found: null; readonly passed: readonly Passed[] };

/** The key of a served container in the ledger. */
export function containerKey(podUid: string, index: number): string {
  return `${podUid}#${index}`;
}

/**
 * The container the kubelet is allocating `count` GPUs for. `served(podUid, index)`: the node's
 * ledger (the pod's own `gpushare.io/allocated` annotation is read here too). `decode`: the
 * decision codec (the shell passes a memo of it: every call reads every pending pod's decision).
 */
export function pendingContainer(pods: Iterable<V1Pod>, node: string, count: number, served: (key: string) => boolean, decode: (text: string) => Result<PodDecision> = decodeDecision): PendingChoice {
  const passed: Passed[] = [];
  // The oldest candidate so far (decision time, then creation, then uid), kept as it is found
  // rather than collected and sorted: creation is parsed only to break a tie.
  let best: V1Pod | null = null;
  let bestUid = '';
  let bestDecision: PodDecision | null = null;
  let bestContainer: ContainerDecision | null = null;
  let bestCreated: number | null = null;
  // Every Allocate and GetPreferredAllocation reads every pod bound to the node, most of them
  // already served: what is only needed to explain a pod passed over (its name) or to judge a
  // container the ledger has not served (the pod's allocated annotation, its started
  // containers) is made only then. Before session 24 each call decoded every served pod's
  // annotation (JSON and its schema) and built a set and a sorted copy per pod: the largest
  // share of the device plugin's garbage, which made it scavenge every ~20 pods.
  for (const pod of pods) {
    const md = pod.metadata;
    if (pod.spec?.nodeName !== node || md?.uid === undefined) continue;
    if (md.deletionTimestamp !== undefined && md.deletionTimestamp !== null) continue;
    const phase = pod.status?.phase;
    if (phase !== undefined && phase !== 'Pending') continue;
    const text = md.annotations?.[GPUSHARE_ANNOTATION.decision];
    if (text === undefined) {
      if (asksGpus(pod)) passed.push({ pod: nameOf(pod), why: `has no ${GPUSHARE_ANNOTATION.decision} annotation (not scheduled by the gpushare extender, or its decision is not here yet)` });
      continue;
    }
    const decoded = decode(text);
    if (!decoded.ok) {
      passed.push({ pod: nameOf(pod), why: describeIssues(decoded.issues) });
      continue;
    }
    const decision = decoded.value;
    if (decision.podUid !== md.uid) {
      passed.push({ pod: nameOf(pod), why: `its decision is for pod uid ${decision.podUid}, not this pod (${md.uid}): a copied annotation is not trusted` });
      continue;
    }
    if (decision.node !== node) {
      passed.push({ pod: nameOf(pod), why: `its decision is for node ${decision.node}, not ${node}` });
      continue;
    }
    const next = nextUnserved(pod, md.uid, decision.containers, served);
    if (next === undefined) continue; // every GPU container served: not pending for us
    const asked = gpuLimit(pod, next.index);
    if (next.gpus.length !== count || asked !== count) {
      passed.push({ pod: nameOf(pod), why: `its next container ${JSON.stringify(next.name)} was given ${next.gpus.length} GPU(s) and asks for ${asked ?? 'no'} ${RESOURCE.gpu}; the kubelet is allocating ${count}` });
      continue;
    }
    let older = best === null || bestDecision === null || decision.decidedAtMs < bestDecision.decidedAtMs;
    if (!older && bestDecision !== null && decision.decidedAtMs === bestDecision.decidedAtMs) {
      const created = createdMs(pod);
      bestCreated ??= createdMs(best!);
      older = created < bestCreated || (created === bestCreated && md.uid < bestUid);
    }
    if (older) {
      best = pod;
      bestUid = md.uid;
      bestDecision = decision;
      bestContainer = next;
      bestCreated = null;
    }
  }
  if (best === null || bestDecision === null || bestContainer === null) return { found: null, passed };
  const md = best.metadata;
  return { found: { pod: { namespace: md?.namespace ?? 'default', name: md?.name ?? '', uid: bestUid }, decision: bestDecision, container: bestContainer } };
}

function nameOf(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

function createdMs(pod: V1Pod): number {
  const ms = Date.parse(String(pod.metadata?.creationTimestamp ?? ''));
  return Number.isNaN(ms) ? 0 : ms;
}

/**
 * The pod's lowest-index GPU container that is not served: not in the ledger, not recorded in
 * the pod's `gpushare.io/allocated` annotation, not started. The annotation and the started
 * set are read only for a container the ledger has not served.
 */
function nextUnserved(pod: V1Pod, uid: string, containers: readonly ContainerDecision[], served: (key: string) => boolean): ContainerDecision | undefined {
  let inOrder = true;
  for (let i = 1; i < containers.length && inOrder; i++) inOrder = containers[i - 1]!.index <= containers[i]!.index;
  const ordered = inOrder ? containers : [...containers].sort((a, b) => a.index - b.index);
  let annotated: Result<ReadonlySet<number>> | undefined;
  const statuses = pod.status?.containerStatuses;
  for (const c of ordered) {
    if (served(containerKey(uid, c.index))) continue;
    if (pod.metadata?.annotations?.[GPUSHARE_ANNOTATION.allocated] !== undefined) {
      annotated ??= allocatedIndexes(pod.metadata.annotations);
      if (annotated.ok && annotated.value.has(c.index)) continue;
    }
    if (statuses !== undefined && statuses.some((s) => s.name === c.name && (s.state?.running || s.state?.terminated || s.lastState?.terminated))) continue;
    return c;
  }
  return undefined;
}

/** What "no pod" means, for the kubelet's event on the pod: every pod passed over and why. */
export function describeNoPending(node: string, count: number, passed: readonly Passed[]): string {
  const head = `no pod bound to node ${node} is waiting for a container of ${count} ${RESOURCE.gpu} with a gpushare decision`;
  if (passed.length === 0) return `${head}; no pending GPU pod is bound to this node`;
  return `${head}; ${passed.slice(0, 8).map((p) => `${p.pod}: ${p.why}`).join('; ')}${passed.length > 8 ? `; and ${passed.length - 8} more` : ''}`;
}

function asksGpus(pod: V1Pod): boolean {
  return (pod.spec?.containers ?? []).some((_, i) => gpuLimit(pod, i) !== null);
}

/** The container's nvidia.com/gpu count (limits, else requests); null when it asks for none. */
function gpuLimit(pod: V1Pod, index: number): number | null {
  const resources = pod.spec?.containers[index]?.resources;
  const value = resources?.limits?.[RESOURCE.gpu] ?? resources?.requests?.[RESOURCE.gpu];
  if (value === undefined) return null;
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/** `decodeDecision` remembered by annotation text (a pod's decision is written once), holding at most `limit` texts. */
export function memoDecoder(limit = 4096): (text: string) => Result<PodDecision> {
  const memo = new Map<string, Result<PodDecision>>();
  return (text) => {
    let r = memo.get(text);
    if (r === undefined) {
      if (memo.size >= limit) memo.clear(); // pods come and go: start again rather than track age
      r = decodeDecision(text);
      memo.set(text, r);
    }
    return r;
  };
}
