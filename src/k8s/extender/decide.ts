/**
 * The extender's decisions, pure: which nodes can take a pod and how well (filter, prioritize),
 * and where exactly on one node its containers go (bind). Everything is asked of the project's
 * one scheduler engine over the view's snapshot; this module only turns a HAMi pod into the
 * engine's requests and the engine's answers into the extender's.
 */
import { createPrng, evaluateNodes, policy, schedule, withPlacement, type ClusterSnapshot, type DecisionMemo, type NodeRejection, type NodeState, type Placement, type PlacementRequest, type Policy, type ScheduleOptions } from '../../scheduler/index.js';
import type { ContainerDecision } from '../hami/decision.js';
import type { HamiPolicy } from '../hami/names.js';
import type { PodGpuRequest } from '../hami/pod-request.js';
import { describeRejection } from './reasons.js';

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
  /** Per node ordinal of the snapshot judged: the engine's score where the node can take the pod, NaN elsewhere. */
  readonly scores: Float64Array;
  /** The nodes that can take it, in the order asked, and their ordinals. */
  readonly passed: readonly string[];
  readonly passedOrdinals: readonly number[];
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
 * Judges nodes for `pod`: `names` with their `ordinals` in `snapshot` (-1: not a GPU node of
 * the view). `empty` is the same cluster with nothing placed (ClusterView.emptySnapshot).
 */
export function evaluatePod(
  snapshot: ClusterSnapshot,
  empty: ClusterSnapshot,
  pod: PodGpuRequest,
  requests: readonly PlacementRequest[],
  names: readonly string[],
  ordinals: readonly number[],
  opts: EvaluateOptions = {},
): PodEvaluation {
  const scores = new Float64Array(snapshot.nodes.length).fill(NaN);
  const passed: string[] = [];
  const passedOrdinals: number[] = [];
  // Keyed by node name: made as dictionaries from the start (a literal would walk V8 through a
  // new hidden class per key, and the keys differ from pod to pod).
  const failed = Object.create(null) as Record<string, string>;
  const unresolvable = Object.create(null) as Record<string, string>;
  const known: number[] = [];
  for (let k = 0; k < names.length; k++) {
    const i = ordinals[k] ?? -1;
    if (i < 0) unresolvable[names[k] as string] = NO_GPUS;
    else known.push(i);
  }
  const done = (): PodEvaluation => ({ scores, passed, passedOrdinals, failed, unresolvable });
  if (known.length === 0) return done();
  const options: ScheduleOptions = { policy: POLICY[pod.nodePolicy], rng: createPrng(1), explain: opts.explain ?? true, ...(opts.memo ? { memo: opts.memo } : {}) };
  const [first] = requests;
  if (requests.length === 1 && first) {
    const ev = evaluateNodes(snapshot, first, options, known);
    if (ev.status === 'unresolvable') {
      const why = `gpushare: ${describeAdmission(ev.reason.kind)}`;
      for (const i of known) unresolvable[snapshot.nodes[i]?.spec.name ?? ''] = why;
      return done();
    }
    for (let k = 0; k < ev.feasible.length; k++) {
      const i = ev.feasible[k] as number;
      scores[i] = ev.scores[k] as number;
      passed.push((snapshot.nodes[i] as NodeState).spec.name);
      passedOrdinals.push(i);
    }
    if (ev.rejections.length === 0) return done();
    // A node refused now but able to take the pod when empty is one preemption may help.
    const refused = ev.rejections.map((r) => empty.nodeByName.get(r.node) as number);
    const { memo: _, ...rest } = options;
    const ifEmpty = evaluateNodes(empty, first, { ...rest, explain: false, ...(opts.emptyMemo ? { memo: opts.emptyMemo } : {}) }, refused);
    const couldFit = new Set(ifEmpty.status === 'evaluated' ? ifEmpty.feasible : []);
    const rendered = opts.rendered;
    for (const r of ev.rejections) {
      let text = rendered?.get(r);
      if (text === undefined) {
        text = `gpushare: ${describeRejection(r.reason)}`;
        rendered?.set(r, text);
      }
      (couldFit.has(empty.nodeByName.get(r.node) as number) ? failed : unresolvable)[r.node] = text;
    }
    return done();
  }
  // Several GPU containers: each node is tried with the containers placed one after another.
  for (const i of known) {
    const name = snapshot.nodes[i]?.spec.name ?? '';
    const now = placeOnNode(snapshot, name, requests, POLICY[pod.nodePolicy]);
    if (now.ok) {
      scores[i] = now.score;
      passed.push(name);
      passedOrdinals.push(i);
      continue;
    }
    const ifEmpty = placeOnNode(empty, name, requests, POLICY[pod.nodePolicy]);
    (ifEmpty.ok ? failed : unresolvable)[name] = `gpushare: ${now.message}`;
  }
  return done();
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
      return { ok: false, message: `${which}${r ? describeRejection(r.reason) : 'no room'}` };
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
