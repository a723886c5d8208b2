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
import type { NodeReasons } from './wire.js';

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
  /** The nodes that can take the pod, in the order asked, their ordinals and (same positions) the engine's score of each. */
  readonly passed: readonly string[];
  readonly passedOrdinals: readonly number[];
  readonly passedScores: readonly number[];
  /** Nodes that cannot take the pod now, but could if lower-priority slices left. */
  readonly failed: NodeReasons;
  /** Nodes that could not take it even empty: preemption cannot help. */
  readonly unresolvable: NodeReasons;
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
 * the view). `empty` is the same cluster with nothing placed (ClusterView.emptySnapshot, whose
 * nodes sit at the same ordinals; another snapshot's are found by name).
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
  // Lists, not objects keyed by node name: 5,000 nodes a pod, and the wire encoder walks them.
  // Few objects a pod (the engine's lists are kept as they come, the names' list is made at
  // its size): at 5,000 nodes the garbage of growing lists was most of a filter's, and the
  // collector's pauses are the p99.
  const failed: NodeReasons = { names: [], reasons: [] };
  const unresolvable: NodeReasons = { names: [], reasons: [] };
  let known: readonly number[] = ordinals;
  if (ordinals.length !== names.length || ordinals.some((i) => !(i >= 0))) {
    const some: number[] = [];
    for (let k = 0; k < names.length; k++) {
      const i = ordinals[k] ?? -1;
      if (i >= 0) some.push(i);
      else {
        unresolvable.names.push(names[k] as string);
        unresolvable.reasons.push(NO_GPUS);
      }
    }
    known = some;
  }
  const none = (): PodEvaluation => ({ passed: [], passedOrdinals: [], passedScores: [], failed, unresolvable });
  if (known.length === 0) return none();
  const options: ScheduleOptions = { policy: POLICY[pod.nodePolicy], rng: createPrng(1), explain: opts.explain ?? true, ...(opts.memo ? { memo: opts.memo } : {}) };
  const [first] = requests;
  if (requests.length === 1 && first) {
    const ev = evaluateNodes(snapshot, first, options, known);
    if (ev.status === 'unresolvable') {
      const why = `gpushare: ${describeAdmission(ev.reason.kind)}`;
      for (const i of known) {
        unresolvable.names.push(snapshot.nodes[i]?.spec.name ?? '');
        unresolvable.reasons.push(why);
      }
      return none();
    }
    const passed = new Array<string>(ev.feasible.length);
    for (let k = 0; k < ev.feasible.length; k++) passed[k] = (snapshot.nodes[ev.feasible[k] as number] as NodeState).spec.name;
    const done = (): PodEvaluation => ({ passed, passedOrdinals: ev.feasible, passedScores: ev.scores, failed, unresolvable });
    if (ev.rejections.length === 0) return done();
    // A node refused now but able to take the pod when empty is one preemption may help.
    const refused = ev.rejected.map((i) => emptyOrdinal(snapshot, empty, i));
    const { memo: _, ...rest } = options;
    const ifEmpty = evaluateNodes(empty, first, { ...rest, explain: false, ...(opts.emptyMemo ? { memo: opts.emptyMemo } : {}) }, refused.filter((i) => i >= 0));
    const couldFit = new Uint8Array(empty.nodes.length);
    if (ifEmpty.status === 'evaluated') for (const i of ifEmpty.feasible) couldFit[i] = 1;
    const rendered = opts.rendered;
    for (let k = 0; k < ev.rejections.length; k++) {
      const r = ev.rejections[k] as NodeRejection;
      let text = rendered?.get(r);
      if (text === undefined) {
        text = `gpushare: ${describeRejection(r.reason)}`;
        rendered?.set(r, text);
      }
      const to = couldFit[refused[k] as number] === 1 ? failed : unresolvable;
      to.names.push(r.node);
      to.reasons.push(text);
    }
    return done();
  }
  const passed: string[] = [];
  const passedOrdinals: number[] = [];
  const passedScores: number[] = [];
  const done = (): PodEvaluation => ({ passed, passedOrdinals, passedScores, failed, unresolvable });
  // Several GPU containers: each node is tried with the containers placed one after another.
  for (const i of known) {
    const name = snapshot.nodes[i]?.spec.name ?? '';
    const now = placeOnNode(snapshot, name, requests, POLICY[pod.nodePolicy]);
    if (now.ok) {
      passed.push(name);
      passedOrdinals.push(i);
      passedScores.push(now.score);
      continue;
    }
    const ifEmpty = placeOnNode(empty, name, requests, POLICY[pod.nodePolicy]);
    const to = ifEmpty.ok ? failed : unresolvable;
    to.names.push(name);
    to.reasons.push(`gpushare: ${now.message}`);
  }
  return done();
}

/** Node `i` of `snapshot` in `empty` (-1: not there). */
function emptyOrdinal(snapshot: ClusterSnapshot, empty: ClusterSnapshot, i: number): number {
  const spec = snapshot.nodes[i]?.spec;
  if (spec === undefined) return -1;
  return empty.nodes[i]?.spec === spec ? i : (empty.nodeByName.get(spec.name) ?? -1);
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
