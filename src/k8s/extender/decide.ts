/**
 * The extender's decisions, pure: which nodes can take a pod and how well (filter, prioritize),
 * and where exactly on one node its containers go (bind). Everything is asked of the project's
 * one scheduler engine over the view's snapshot; this module only turns a HAMi pod into the
 * engine's requests and the engine's answers into the extender's.
 */
import { createPrng, describeNodeReason, evaluateNodes, policy, schedule, withPlacement, type ClusterSnapshot, type DecisionMemo, type NodeRejection, type Placement, type PlacementRequest, type Policy, type ScheduleOptions } from '../../scheduler/index.js';
import type { ContainerDecision } from '../hami/decision.js';
import type { HamiPolicy } from '../hami/names.js';
import type { PodGpuRequest } from '../hami/pod-request.js';

const POLICY: Readonly<Record<HamiPolicy, Policy>> = { binpack: policy('binpack'), spread: policy('spread') };

/** The engine's request for each container that asks for GPUs; ids `<pod uid>/<container index>`. */
export function placementRequests(pod: PodGpuRequest, suspendable: boolean): PlacementRequest[] {
  return pod.containers.map((c) => ({
    id: `${pod.uid}/${c.index}`,
    slice: c.slice,
    // Host CPU and memory are the kube-scheduler's own checks.
    cpuMilli: 0,
    memoryBytes: 0,
    tenant: null,
    gang: null,
    suspendable,
    policy: null,
  }));
}

/** Filter's answer before it is put on the wire. */
export interface PodEvaluation {
  /** Feasible nodes and the engine's score of each (higher is better). */
  readonly scores: Map<string, number>;
  /** Nodes that cannot take the pod now, but could if lower-priority slices left. */
  readonly failed: Record<string, string>;
  /** Nodes that could not take it even empty: preemption cannot help. */
  readonly unresolvable: Record<string, string>;
}

export interface EvaluateOptions {
  /** Per-node answers kept between pods (the engine's memo), for the cluster now. */
  readonly memo?: DecisionMemo | undefined;
  /** The same for the empty cluster (its nodes change only when the inventory does). */
  readonly emptyMemo?: DecisionMemo | undefined;
  /** Reasons already rendered: a memo'd rejection is the same object pod after pod. */
  readonly rendered?: WeakMap<NodeRejection, string> | undefined;
  /** GPU-by-GPU reasons for refused nodes (default true). */
  readonly explain?: boolean;
}

/**
 * Judges `nodes` (names) for `pod`: the engine's score on each that can take it, its reason on
 * each that cannot. `empty` is the same cluster with nothing placed (ClusterView.emptySnapshot).
 */
export function evaluatePod(snapshot: ClusterSnapshot, empty: ClusterSnapshot, pod: PodGpuRequest, requests: readonly PlacementRequest[], nodes: readonly string[], opts: EvaluateOptions = {}): PodEvaluation {
  const scores = new Map<string, number>();
  // Keyed by node name: made as dictionaries from the start (a literal would walk V8 through a
  // new hidden class per key, and the keys differ from pod to pod).
  const failed = Object.create(null) as Record<string, string>;
  const unresolvable = Object.create(null) as Record<string, string>;
  const ordinals: number[] = [];
  for (const name of nodes) {
    const i = snapshot.nodeByName.get(name);
    if (i === undefined) unresolvable[name] = NO_GPUS;
    else ordinals.push(i);
  }
  if (ordinals.length === 0) return { scores, failed, unresolvable };
  const options: ScheduleOptions = { policy: POLICY[pod.nodePolicy], rng: createPrng(1), explain: opts.explain ?? true, ...(opts.memo ? { memo: opts.memo } : {}) };
  const [first] = requests;
  if (requests.length === 1 && first) {
    const ev = evaluateNodes(snapshot, first, options, ordinals);
    if (ev.status === 'unresolvable') {
      const why = `gpushare: ${describeAdmission(ev.reason.kind)}`;
      for (const i of ordinals) unresolvable[snapshot.nodes[i]?.spec.name ?? ''] = why;
      return { scores, failed, unresolvable };
    }
    for (const f of ev.feasible) scores.set(f.node, f.score);
    if (ev.rejections.length === 0) return { scores, failed, unresolvable };
    // A node refused now but able to take the pod when empty is one preemption may help.
    const refused = ev.rejections.map((r) => empty.nodeByName.get(r.node) as number);
    const { memo: _, ...rest } = options;
    const ifEmpty = evaluateNodes(empty, first, { ...rest, explain: false, ...(opts.emptyMemo ? { memo: opts.emptyMemo } : {}) }, refused);
    const couldFit = new Set(ifEmpty.status === 'evaluated' ? ifEmpty.feasible.map((f) => f.node) : []);
    const rendered = opts.rendered;
    for (const r of ev.rejections) {
      let text = rendered?.get(r);
      if (text === undefined) {
        text = `gpushare: ${describeNodeReason(r.reason)}`;
        rendered?.set(r, text);
      }
      (couldFit.has(r.node) ? failed : unresolvable)[r.node] = text;
    }
    return { scores, failed, unresolvable };
  }
  // Several GPU containers: each node is tried with the containers placed one after another.
  for (const i of ordinals) {
    const name = snapshot.nodes[i]?.spec.name ?? '';
    const now = placeOnNode(snapshot, name, requests, POLICY[pod.nodePolicy]);
    if (now.ok) {
      scores.set(name, now.score);
      continue;
    }
    const ifEmpty = placeOnNode(empty, name, requests, POLICY[pod.nodePolicy]);
    (ifEmpty.ok ? failed : unresolvable)[name] = `gpushare: ${now.message}`;
  }
  return { scores, failed, unresolvable };
}

/** Where each container goes on `node`: the pod's GPU policy picks the GPUs (bind). */
export function placePod(snapshot: ClusterSnapshot, node: string, pod: PodGpuRequest, requests: readonly PlacementRequest[]): Placed {
  return placeOnNode(snapshot, node, requests, POLICY[pod.gpuPolicy]);
}

export type Placed = { readonly ok: true; readonly placements: readonly Placement[]; readonly score: number } | { readonly ok: false; readonly message: string };

function placeOnNode(snapshot: ClusterSnapshot, node: string, requests: readonly PlacementRequest[], pol: Policy): Placed {
  const i = snapshot.nodeByName.get(node);
  const state = i === undefined ? undefined : snapshot.nodes[i];
  if (state === undefined) return { ok: false, message: NO_GPUS };
  let one: ClusterSnapshot = { ...snapshot, nodes: [state], nodeByName: new Map([[node, 0]]) };
  const placements: Placement[] = [];
  let score = 0;
  for (const [k, req] of requests.entries()) {
    const d = schedule(one, req, { policy: pol, rng: createPrng(1) });
    if (d.status === 'unresolvable') return { ok: false, message: describeAdmission(d.reason.kind) };
    if (d.status === 'unschedulable') {
      const r = d.rejections[0];
      const which = requests.length > 1 ? `container ${k + 1} of ${requests.length}: ` : '';
      return { ok: false, message: `${which}${r ? describeNodeReason(r.reason) : 'no room'}` };
    }
    placements.push(d.placement);
    score += d.score / requests.length;
    one = withPlacement(one, d.placement);
  }
  return { ok: true, placements, score };
}

/** The decision's containers for placements made by placePod. */
export function containerDecisions(snapshot: ClusterSnapshot, pod: PodGpuRequest, placements: readonly Placement[]): ContainerDecision[] {
  return pod.containers.map((c, k) => {
    const p = placements[k] as Placement;
    const spec = snapshot.nodes[snapshot.nodeByName.get(p.node) as number]?.spec;
    return {
      name: c.name,
      index: c.index,
      taskPriority: c.taskPriority,
      exclusive: p.exclusive,
      gpus: p.gpus.map((g) => ({
        uuid: spec?.gpus[g.gpu]?.uuid ?? '',
        index: g.gpu,
        memoryBytes: c.memoryMiB !== null && p.exclusive ? c.memoryMiB * 2 ** 20 : g.memoryBytes,
        coresPercent: p.exclusive ? 0 : c.coresPercent,
        computeMilli: g.computeMilli,
      })),
    };
  });
}

const NO_GPUS = 'gpushare: the node has no GPUs gpushare schedules (no valid gpushare.io/node-gpus annotation: is the gpushare node agent running there?)';

function describeAdmission(kind: 'quotaExceeded' | 'unknownPolicy' | 'noNodes'): string {
  return kind === 'noNodes' ? 'no node has GPUs gpushare schedules' : kind === 'unknownPolicy' ? 'unknown scheduling policy' : 'quota exceeded';
}
