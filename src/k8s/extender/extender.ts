/**
 * The scheduler extender's verbs over the cluster view: decode (wire.ts), decide (decide.ts,
 * the engine), answer. filter says every feasible node and why each other one is not;
 * prioritize turns the engine's scores into 0..10; bind is bind.ts; preempt asks the engine's
 * preemption planner which slices must go, and whether each is suspended or evicted.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { describeIssues } from '../../domain/index.js';
import { createPrng, DecisionMemo, planPreemption, policy, type ClusterSnapshot, type NodeRejection } from '../../scheduler/index.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import { parsePodGpuRequest, type PodGpuRequest } from '../hami/pod-request.js';
import { encodeSuspendRequest, SUSPENSION_VERSION } from '../hami/suspension.js';
import type { PodBinder } from './api.js';
import { PodBinding } from './bind.js';
import { ClusterView, type SuspendPolicy } from './cluster-view.js';
import { evaluatePod, placementRequests, type PodEvaluation } from './decide.js';
import { passedScores, sameList } from './answer.js';
import { NodeVerdicts, VerdictTable, type Basis } from './verdicts.js';
import {
  filterResultOf,
  hostPrioritiesOf,
  MAX_EXTENDER_PRIORITY,
  type ExtenderArgs,
  type ExtenderBindingArgs,
  type ExtenderBindingResult,
  type ExtenderFilterResult,
  type ExtenderPreemptionArgs,
  type ExtenderPreemptionResult,
  type FilterAnswer,
  type HostPriority,
  type MetaVictims,
  type NodeReasons,
  type PriorityAnswer,
} from './wire.js';

/** Which pods are suspended (checkpointed, resumed later) rather than evicted when preempted. */
export interface SuspendConfig {
  readonly namespaces?: readonly string[];
  readonly priorityClasses?: readonly string[];
}

export interface ExtenderOptions {
  readonly suspend?: SuspendConfig;
  /** GPU-by-GPU reasons for refused nodes (default true). */
  readonly explain?: boolean;
  readonly now?: () => number;
}

/** What preempt decided for one preemptor on one node (kept for the watch and for people). */
export interface PreemptionRecord {
  readonly preemptor: string;
  readonly node: string;
  readonly evict: readonly string[];
  /** Victims to suspend: never returned to the kube-scheduler (it would delete them). */
  readonly suspend: readonly { uid: string; namespace: string; name: string }[];
  readonly atMs: number;
}

export function suspendPolicyOf(cfg: SuspendConfig | undefined): SuspendPolicy {
  const ns = new Set(cfg?.namespaces ?? []);
  const pcs = new Set(cfg?.priorityClasses ?? []);
  return (pod) => ns.has(pod.namespace) || (pod.priorityClassName !== null && pcs.has(pod.priorityClassName));
}

/**
 * Answers kept per pod between its filter and its prioritize (same view generation only). The
 * kube-scheduler's cycle is one pod at a time, prioritize right after filter: a few are enough,
 * and each kept answer (~100 KB at 5,000 nodes) kept long ends as old-generation garbage.
 */
const CACHED_PODS = 16;

/** What filter passed for one pod, kept for its prioritize. */
interface Passed {
  readonly generation: number;
  readonly evaluation: PodEvaluation;
  /** 1 at the ordinal of every node filter was asked about. */
  readonly asked: Uint8Array;
}

export class Extender {
  readonly view: ClusterView;
  private readonly binding: PodBinding;
  private readonly memo = new DecisionMemo();
  private readonly emptyMemo = new DecisionMemo();
  private readonly rendered = new WeakMap<NodeRejection, string>();
  private readonly cache = new Map<string, Passed>();
  /** filter's verdicts kept per pod shape (shapeKey) over the list they were asked for, least recently used first. */
  private readonly tables = new Map<string, VerdictTable>();
  /** Verdicts kept per pod shape by node ordinal, for lists no table fits (a window moving pod by pod), least recently used first. */
  private readonly byNode = new Map<string, NodeVerdicts>();
  /** The node list the last filter without a table was sent (a copy). */
  private lastFilterList: readonly string[] | null = null;
  private lastNames: { nodeByName: ReadonlyMap<string, number>; names: readonly string[]; ordinals: readonly number[] } | null = null;
  private readonly suspendable: SuspendPolicy;
  private readonly now: () => number;
  private readonly explain: boolean;
  /** Names asked about outside kept tables, and how many of them the engine judged (the rest kept by ordinal): read by tests and the bench. */
  readonly judged = { asked: 0, byEngine: 0 };
  /** Suspensions preempt chose, by preemptor uid, until the preemptor is nominated (or goes). */
  readonly preemptions = new Map<string, PreemptionRecord[]>();

  constructor(
    private readonly api: PodBinder,
    options: ExtenderOptions = {},
  ) {
    this.suspendable = suspendPolicyOf(options.suspend);
    this.view = new ClusterView(this.suspendable);
    this.now = options.now ?? Date.now;
    this.explain = options.explain ?? true;
    this.binding = new PodBinding(this.view, api, this.suspendable, this.now);
  }

  filter(args: ExtenderArgs): ExtenderFilterResult {
    return filterResultOf(this.filterAnswer(args));
  }

  /** filter's answer as lists (the HTTP route encodes it without an object per node). */
  filterAnswer(args: ExtenderArgs): FilterAnswer {
    const names = candidateNames(args);
    const result = (pass: readonly string[], failed: NodeReasons, unresolvable: NodeReasons): FilterAnswer => {
      let nodes: FilterAnswer['nodes'] = null;
      if (args.Nodes) {
        const keep = new Set(pass);
        nodes = { ...args.Nodes, items: (args.Nodes.items ?? []).filter((n) => keep.has(n.metadata.name)) };
      }
      return { nodes, nodeNames: args.Nodes ? null : pass, failed, unresolvable };
    };
    const none = (): NodeReasons => ({ names: [], reasons: [] });
    const parsed = parsePodGpuRequest(args.Pod as V1Pod);
    if (!parsed.ok) {
      // The pod itself is wrong: no node and no preemption can help, and the event says why.
      const why = `gpushare: ${describeIssues(parsed.issues)}`;
      return result([], none(), { names: [...names], reasons: names.map(() => why) });
    }
    if (parsed.value === null) return result(names, none(), none());
    if (args.NodeNames) {
      const table = this.verdicts(parsed.value, args.NodeNames);
      if (table !== null) return args.Nodes ? { ...result(table.passed, table.failed, table.unresolvable), verdicts: table } : table.answer();
    }
    const { evaluation } = this.evaluate(parsed.value, names, false);
    const { unresolvable } = evaluation;
    if (this.view.problemCount > 0) {
      const at = new Map(unresolvable.names.map((n, k) => [n, k]));
      for (const [node, problem] of this.view.problems()) {
        const k = at.get(node);
        if (k !== undefined) unresolvable.reasons[k] = `gpushare: node's ${GPUSHARE_ANNOTATION.nodeGpus} is invalid: ${problem}`;
      }
    }
    return result(evaluation.passed, evaluation.failed, unresolvable);
  }

  /**
   * Scores 0..10 for the nodes given: the engine's score scaled so the best node gets 10 and
   * the worst 0 (the kube-scheduler multiplies by the extender's weight and adds its own
   * plugins'); nodes that cannot take the pod get 0. Pods without GPUs: 0 everywhere (no opinion).
   */
  prioritize(args: ExtenderArgs): HostPriority[] {
    return hostPrioritiesOf(this.prioritizeAnswer(args));
  }

  /** prioritize's answer as lists (the HTTP route encodes it without an object per node). */
  prioritizeAnswer(args: ExtenderArgs): PriorityAnswer {
    const names = candidateNames(args);
    const parsed = parsePodGpuRequest(args.Pod as V1Pod);
    if (!parsed.ok || parsed.value === null) return { hosts: names, scores: new Uint8Array(names.length) };
    // The names filter just passed from its kept table (the kube-scheduler sends them back), or
    // some of the table's names (another extender or plugin refused the others).
    const table = this.tables.get(shapeKey(parsed.value, this.suspendable));
    if (table !== undefined && table.generation === this.view.generation) {
      if (table.passedIs(names)) {
        const positions = table.scaledScores();
        // In the names' order only when asked for (the routes' writer reads them by position).
        let scores: Uint8Array | null = null;
        return {
          hosts: names,
          get scores(): Uint8Array {
            return (scores ??= passedScores(positions.byPosition, names.length));
          },
          verdicts: table,
          positions,
        };
      }
      const raw = table.scoresOf(names);
      if (raw !== null) return { hosts: names, scores: scaled(raw) };
    }
    const { evaluation, ordinals, positional } = this.evaluate(parsed.value, names, true);
    // Each name's engine score, NaN where the node cannot take the pod.
    const raw = new Float64Array(names.length);
    if (positional) raw.set(evaluation.passedScores);
    else {
      const byOrdinal = new Map<number, number>();
      for (let k = 0; k < evaluation.passedOrdinals.length; k++) byOrdinal.set(evaluation.passedOrdinals[k] as number, evaluation.passedScores[k] as number);
      for (let k = 0; k < names.length; k++) raw[k] = byOrdinal.get(ordinals[k] as number) ?? NaN;
    }
    return { hosts: names, scores: scaled(raw) };
  }

  bind(args: ExtenderBindingArgs): Promise<ExtenderBindingResult> {
    return this.binding.bind(args);
  }

  /**
   * Victims per candidate node: the engine's plan on that node, or the node dropped where no
   * set of lower-priority GPU slices would make room. The kube-scheduler's own victims that
   * hold no GPU slice here stay (it chose them for CPU or memory); its GPU victims are replaced
   * by the plan's evictions. Victims the plan suspends are not returned (the kube-scheduler
   * deletes what it gets): they are recorded, and asked to suspend when the preemptor is
   * nominated to that node (observePod).
   */
  preempt(args: ExtenderPreemptionArgs): ExtenderPreemptionResult {
    const input = kubeVictims(args);
    const parsed = parsePodGpuRequest(args.Pod as V1Pod);
    const out: Record<string, MetaVictims> = {};
    if (!parsed.ok) return { NodeNameToMetaVictims: out };
    const request = parsed.value;
    if (request === null || request.containers.length !== 1) {
      // No GPUs (or several GPU containers, which the planner does not take): the kube-scheduler's own choice stands.
      for (const [node, v] of input) out[node] = v;
      return { NodeNameToMetaVictims: out };
    }
    const snapshot = this.view.snapshot();
    const suspendable = this.suspendable({ namespace: request.namespace, priorityClassName: request.priorityClassName });
    const [req] = placementRequests(request, suspendable);
    const records: PreemptionRecord[] = [];
    for (const [node, kube] of input) {
      const i = snapshot.nodeByName.get(node);
      const state = i === undefined ? undefined : snapshot.nodes[i];
      if (!state || !req) continue;
      const one = { ...snapshot, nodes: [state], nodeByName: new Map([[node, 0]]) };
      const plan = planPreemption(one, req, { policy: policy(request.gpuPolicy), rng: createPrng(1) });
      if (!plan) continue;
      const gpuPods = new Set(state.placements.map((p) => this.view.podOfPlacement(p.id)?.uid).filter((u): u is string => u !== undefined));
      const evict = new Set<string>();
      const suspend = new Map<string, { uid: string; namespace: string; name: string }>();
      for (const a of plan.actions) {
        const pod = this.view.podOfPlacement(a.placement.id);
        if (!pod) continue;
        if (a.action === 'evict') evict.add(pod.uid);
        else suspend.set(pod.uid, pod);
      }
      for (const v of kube.Pods) if (!gpuPods.has(v.UID)) evict.add(v.UID);
      out[node] = { Pods: [...evict].map((UID) => ({ UID })), NumPDBViolations: kube.NumPDBViolations };
      records.push({ preemptor: request.uid, node, evict: [...evict], suspend: [...suspend.values()], atMs: this.now() });
    }
    if (records.length > 0) this.preemptions.set(request.uid, records);
    return { NodeNameToMetaVictims: out };
  }

  /**
   * The watch's pods: into the view, and a preemptor nominated to a node gets the suspensions
   * preempt chose there written on its victims (gpushare.io/suspend-request; the node acts on it).
   */
  async observePod(pod: V1Pod, deleted = false): Promise<void> {
    this.view.observePod(pod, deleted);
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const records = this.preemptions.get(uid);
    if (!records) return;
    if (deleted || pod.spec?.nodeName) {
      this.preemptions.delete(uid);
      return;
    }
    const nominated = pod.status?.nominatedNodeName;
    const chosen = nominated ? records.find((r) => r.node === nominated) : undefined;
    if (!chosen) return;
    this.preemptions.delete(uid);
    const note = encodeSuspendRequest({ v: SUSPENSION_VERSION, preemptor: uid, node: chosen.node, atMs: chosen.atMs });
    for (const v of chosen.suspend) {
      const victim = await this.api.getPod(v).catch(() => null);
      if (victim?.metadata?.uid !== v.uid) continue;
      await this.api.annotatePod({ ...v, resourceVersion: victim.metadata.resourceVersion ?? '' }, { [GPUSHARE_ANNOTATION.suspendRequest]: note }).catch(() => undefined);
    }
  }

  /**
   * filter's kept verdicts for `pod`'s shape over `names`, brought up to date: only the nodes
   * whose state changed since are judged again. A table is made for a list the previous filter
   * was sent too (the kube-scheduler's list of every node, pod after pod); null for a list
   * not seen twice in a row (a window of the nodes moving pod by pod: judged as it comes).
   */
  private verdicts(pod: PodGpuRequest, names: readonly string[]): VerdictTable | null {
    const key = shapeKey(pod, this.suspendable);
    const snapshot = this.view.snapshot();
    const basis: Basis = { nodeByName: snapshot.nodeByName, empty: this.view.emptySnapshot(), problems: this.view.problemsVersion };
    let table = this.tables.get(key);
    if (table === undefined || !table.fits(names, basis)) {
      const last = this.lastFilterList;
      if (last === null || !sameList(last, names)) {
        this.lastFilterList = [...names];
        return null;
      }
      table = new VerdictTable(last, this.ordinalsOf(snapshot, last), basis);
    }
    this.tables.delete(key);
    this.tables.set(key, table);
    if (this.tables.size > KEPT_TABLES) this.tables.delete(this.tables.keys().next().value as string);
    if (table.generation === this.view.generation) return table;
    // Only the nodes changed since the table's snapshot are looked at (all, when that is too far back).
    const stale = table.stale(snapshot, table.snapshotSeq < 0 ? null : this.view.changedSince(table.snapshotSeq));
    if (stale.length > 0) {
      const staleNames = stale.map((k) => table.names[k] as string);
      const staleOrdinals = stale.map((k) => table.ordinals[k] as number);
      const suspendable = this.suspendable({ namespace: pod.namespace, priorityClassName: pod.priorityClassName });
      const evaluation = evaluatePod(snapshot, basis.empty, pod, placementRequests(pod, suspendable), staleNames, staleOrdinals, {
        memo: this.memo,
        emptyMemo: this.emptyMemo,
        rendered: this.rendered,
        explain: this.explain,
      });
      table.apply(snapshot, stale, evaluation, (node) => (this.view.problemCount > 0 && this.view.problemOf(node) !== null ? `gpushare: node's ${GPUSHARE_ANNOTATION.nodeGpus} is invalid: ${this.view.problemOf(node)}` : null));
    }
    table.generation = this.view.generation;
    table.snapshotSeq = this.view.snapshotSeq;
    return table;
  }

  /**
   * The pod's evaluation over `names` and the names' ordinals. filter evaluates; prioritize
   * reuses its pod's filter answer while the view is unchanged (it asks about the nodes filter
   * passed: `positional`, the scores are the passed ones in order) and evaluates otherwise.
   */
  private evaluate(pod: PodGpuRequest, names: readonly string[], reuse: boolean): { evaluation: PodEvaluation; ordinals: readonly number[]; positional: boolean } {
    const snapshot = this.view.snapshot();
    const key = pod.uid || `${pod.namespace}/${pod.name}`;
    const generation = this.view.generation;
    const hit = reuse ? this.cache.get(key) : undefined;
    if (hit && hit.generation === generation) {
      // prioritize after filter: the names filter passed, in its order (compared, not hashed).
      const passed = hit.evaluation.passed;
      let same = passed.length === names.length;
      for (let k = 0; k < names.length && same; k++) same = passed[k] === names[k];
      if (same) return { evaluation: hit.evaluation, ordinals: hit.evaluation.passedOrdinals, positional: true };
    }
    const ordinals = this.ordinalsOf(snapshot, names);
    if (hit && hit.generation === generation && ordinals.every((i) => i >= 0 && hit.asked[i] === 1)) {
      return { evaluation: hit.evaluation, ordinals, positional: false };
    }
    const evaluation = this.judge(pod, snapshot, names, ordinals);
    const asked = new Uint8Array(snapshot.nodes.length);
    for (const i of ordinals) if (i >= 0) asked[i] = 1;
    this.cache.delete(key);
    // Kept without its reasons: prioritize reads what passed.
    this.cache.set(key, { generation, evaluation: { ...evaluation, failed: NO_REASONS, unresolvable: NO_REASONS }, asked });
    if (this.cache.size > CACHED_PODS) this.cache.delete(this.cache.keys().next().value as string);
    return { evaluation, ordinals, positional: false };
  }

  /**
   * evaluatePod of `names`, by way of the shape's verdicts kept by node ordinal: only the nodes
   * whose state changed since the shape last asked about them are judged by the engine.
   */
  private judge(pod: PodGpuRequest, snapshot: ClusterSnapshot, names: readonly string[], ordinals: readonly number[]): PodEvaluation {
    const key = shapeKey(pod, this.suspendable);
    const empty = this.view.emptySnapshot();
    const basis: Basis = { nodeByName: snapshot.nodeByName, empty, problems: this.view.problemsVersion };
    let kept = this.byNode.get(key);
    if (kept === undefined || !kept.fits(basis, snapshot.nodes.length)) kept = new NodeVerdicts(basis, snapshot.nodes.length);
    this.byNode.delete(key);
    this.byNode.set(key, kept);
    if (this.byNode.size > KEPT_TABLES) this.byNode.delete(this.byNode.keys().next().value as string);
    const suspendable = this.suspendable({ namespace: pod.namespace, priorityClassName: pod.priorityClassName });
    const requests = placementRequests(pod, suspendable);
    this.judged.asked += names.length;
    return kept.judge(snapshot, names, ordinals, (some, at) => {
      this.judged.byEngine += some.length;
      return evaluatePod(snapshot, empty, pod, requests, some, at, {
        memo: this.memo,
        emptyMemo: this.emptyMemo,
        rendered: this.rendered,
        explain: this.explain,
      });
    });
  }

  /**
   * Each name's ordinal in `snapshot` (-1: not a GPU node here). The kube-scheduler sends the
   * same list pod after pod: the last answer is kept and checked name by name (cheaper than
   * hashing 5,000 names).
   */
  private ordinalsOf(snapshot: ClusterSnapshot, names: readonly string[]): readonly number[] {
    const last = this.lastNames;
    if (last && last.nodeByName === snapshot.nodeByName && last.names.length === names.length) {
      let same = true;
      for (let k = 0; k < names.length && same; k++) same = last.names[k] === names[k];
      if (same) return last.ordinals;
    }
    const ordinals = names.map((n) => snapshot.nodeByName.get(n) ?? -1);
    this.lastNames = { nodeByName: snapshot.nodeByName, names: [...names], ordinals };
    return ordinals;
  }
}

const NO_REASONS: NodeReasons = { names: [], reasons: [] };

/**
 * Pod shapes whose verdicts are kept (each a few slots per node; the kube-scheduler's pods come
 * in a handful of shapes, and a shape seen again after many others is judged whole again).
 */
const KEPT_TABLES = 16;

/**
 * What filter's verdicts for a pod depend on besides the cluster: its containers' slices, its
 * node policy, and whether its slices may be suspended (the placement requests evaluatePod
 * makes of it). Not its name, uid or GPU policy (bind's choice of GPUs on the node).
 */
function shapeKey(pod: PodGpuRequest, suspendable: SuspendPolicy): string {
  const s = suspendable({ namespace: pod.namespace, priorityClassName: pod.priorityClassName });
  return `${pod.nodePolicy}|${s}|${JSON.stringify(pod.containers.map((c) => c.slice))}`;
}

/**
 * Scores 0..10 of the engine's (NaN: the node cannot take the pod, 0): the best node gets 10
 * and the worst 0; all alike, all 10.
 */
function scaled(raw: Float64Array): Uint8Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of raw) {
    if (Number.isNaN(s)) continue;
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  const flat = hi - lo <= 1e-12 * Math.max(1, Math.abs(hi));
  const scores = new Uint8Array(raw.length);
  for (let k = 0; k < raw.length; k++) {
    const s = raw[k] as number;
    scores[k] = Number.isNaN(s) ? 0 : flat ? MAX_EXTENDER_PRIORITY : Math.round((MAX_EXTENDER_PRIORITY * (s - lo)) / (hi - lo));
  }
  return scores;
}

function candidateNames(args: ExtenderArgs): string[] {
  if (args.NodeNames) return args.NodeNames;
  return (args.Nodes?.items ?? []).map((n) => n.metadata.name);
}

function kubeVictims(args: ExtenderPreemptionArgs): Map<string, MetaVictims> {
  const out = new Map<string, MetaVictims>();
  for (const [node, v] of Object.entries(args.NodeNameToMetaVictims ?? {})) out.set(node, { Pods: (v?.Pods ?? []).map((p) => ({ UID: p.UID })), NumPDBViolations: v?.NumPDBViolations ?? 0 });
  for (const [node, v] of Object.entries(args.NodeNameToVictims ?? {})) {
    if (out.has(node)) continue;
    out.set(node, { Pods: (v?.Pods ?? []).map((p) => ({ UID: p.metadata.uid ?? '' })).filter((p) => p.UID !== ''), NumPDBViolations: v?.NumPDBViolations ?? 0 });
  }
  return out;
}

