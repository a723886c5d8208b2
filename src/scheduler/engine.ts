/**
 * The placement engine: admission, then filter every node and GPU, then score the candidate
 * GPU sets of the nodes that pass, and pick the best (ties broken by tiebreak.ts: one seeded PRNG
 * draw per decision). Pure: the same snapshot, request, options and PRNG state give the same decision.
 *
 * Why one module of over 400 lines: the fast scan, the plugin scan and the search they both feed
 * must give the same decisions, PRNG draws included (engine.fastpath.test.ts); side by side, a
 * change to one is read against the other. evaluateNodes (every node's score, for the Kubernetes
 * extender) is the same scan keeping every node's answer, so it sits here too.
 */
import { demandOf, migComputeMilli } from './demand.js';
import { prepareFeasibility, type Feasibility } from './feasibility.js';
import type { AdmissionPlugin, CycleContext, FilterPlugin, PreparedFilter, PreparedScore } from './framework.js';
import { chooseMigInstance } from './mig.js';
import { exclusivity, gpuCapacity, health, migFit, migMode, nodeResources, selectors } from './plugins/filters.js';
import { partitionAsk, partitionRangeOn, smPartition } from './plugins/partition.js';
import { quotaAdmission, quotaMemory } from './plugins/quota.js';
import { parsePolicy, type Policy } from './policy.js';
import type { Prng } from './prng.js';
import type { DecisionMemo, MemoTable } from './memo.js';
import { SCORE_PLUGINS } from './policy.js';
import { gpuOneKey, gpuSetKey, tieDraw, tieRank, type TieMode } from './tiebreak.js';
import type { WorkloadModel } from './workload.js';
import type { AdmissionReason, ClusterSnapshot, Decision, GpuReason, GpuShare, GpuSpec, NodeRejection, NodeState, Placement, PlacementRequest } from './types.js';

/**
 * The default filter chain, cheapest and most telling first; SM partitions last, so a GPU
 * refused for its SMs (or for the kind of work on it) passed every other check: the daemon
 * tells "waiting for SMs" from "waiting for room" by it.
 */
export const DEFAULT_FILTERS: readonly FilterPlugin[] = [nodeResources, health, migMode, selectors, exclusivity, gpuCapacity, migFit, quotaMemory, smPartition];
export const DEFAULT_ADMISSION: readonly AdmissionPlugin[] = [quotaAdmission];

export interface ScheduleOptions {
  /** The cluster's policy; a tenant's or the request's own overrides it. */
  readonly policy: Policy;
  readonly tenantPolicies?: ReadonlyMap<string, Policy>;
  /** Breaks ties between equally good candidates. */
  readonly rng: Prng;
  readonly workload?: WorkloadModel | null;
  /** Record why each GPU of a rejected node failed (default true); the simulator turns it off for speed. */
  readonly explain?: boolean;
  readonly filters?: readonly FilterPlugin[];
  readonly admission?: readonly AdmissionPlugin[];
  /**
   * Per-node results kept between decisions (memo.ts): same decisions, far less work when few
   * nodes change between them. Used on the fast path only (default filters, non-MIG).
   */
  readonly memo?: DecisionMemo;
}

interface Scorer {
  readonly prepared: PreparedScore;
  readonly weight: number;
  /** The plugin tells GPUs in the same state apart (ScorePlugin.gpuIdentity). */
  readonly identity: boolean;
}

/** Relative difference under which two scores count as a tie. */
const TIE = 1e-12;

/**
 * Decides where `request` goes on `snapshot`, or says why it cannot go anywhere.
 *
 * Two paths give the same decisions (engine.fastpath.test.ts holds them to it against
 * testing/reference-engine.ts, PRNG draws included: one per decision that passes admission,
 * none under the `first` tie mode). With the default filters and a non-MIG request, the fused
 * checks of feasibility.ts pick the candidates, no reasons are built, and `options.memo`
 * answers for nodes unchanged since the last decision of the same shape; with custom filters,
 * a MIG request, or when nothing fits, the filter plugins run on every node, so an
 * explanation costs time only when there is something to explain.
 */
export function schedule(snapshot: ClusterSnapshot, request: PlacementRequest, options: ScheduleOptions): Decision {
  const cycle = startCycle(snapshot, request, options);
  if ('status' in cycle) return cycle;
  const { pol, ctx, scorers, identity, tieMode } = cycle;
  const search = new Search(scorers, identity, options.rng, ctx.demand.count, tieMode);
  const filters = options.filters ?? DEFAULT_FILTERS;
  const fast = filters === DEFAULT_FILTERS ? prepareFeasibility(ctx) : null;
  if (fast) {
    const key = options.memo ? memoKey(pol, ctx, fast, options.memo, scorers) : null;
    const table = key !== null && options.memo ? options.memo.table(key) : null;
    const found = fastScan(snapshot, fast, search, table);
    if (found) return { status: 'ok', placement: toPlacement(ctx, found.node, found.gpus), score: found.score };
    // Nothing fits. Without explanations the fused checks also give each node's reason;
    // with them, the plugins below say why (and, as the fused checks agree with them, find no
    // candidate either).
    if (!(options.explain ?? true)) return { status: 'unschedulable', rejections: fastRejections(snapshot, ctx, fast) };
  }
  return filterScan(snapshot, ctx, filters, options.explain ?? true, search);
}

/** Every node's answer for one request (evaluateNodes): its best score, or why it cannot take it. */
export type NodeEvaluation =
  | {
      readonly status: 'evaluated';
      /** Ordinals of the nodes that can take it, and (same positions) the score of each: no object per node, at 5,000 nodes a pod. */
      readonly feasible: readonly number[];
      readonly scores: readonly number[];
      readonly rejections: readonly NodeRejection[];
      /** The ordinal of each rejection's node (same positions): callers need not look names up. */
      readonly rejected: readonly number[];
    }
  | { readonly status: 'unresolvable'; readonly reason: AdmissionReason };

/**
 * Each of `nodes` (ordinals in `snapshot`; all when null) judged alone: the best score it
 * offers the request, with the same filters, scores and memo as schedule(), or the reason it
 * cannot take it (the filter plugins' reasons, GPU by GPU when `options.explain` is on). For a
 * caller that ranks nodes itself (the Kubernetes extender's filter and prioritize); schedule()
 * is the same scan keeping only the best.
 */
export function evaluateNodes(snapshot: ClusterSnapshot, request: PlacementRequest, options: ScheduleOptions, nodes: readonly number[] | null = null): NodeEvaluation {
  const cycle = startCycle(snapshot, request, options);
  if ('status' in cycle) return cycle;
  const { pol, ctx, scorers, identity } = cycle;
  // No tie-break here: the caller ranks. 'first' mode draws nothing from the PRNG.
  const search = new Search(scorers, identity, options.rng, ctx.demand.count, 'first');
  const filters = options.filters ?? DEFAULT_FILTERS;
  const fast = filters === DEFAULT_FILTERS ? prepareFeasibility(ctx) : null;
  const all = snapshot.nodes;
  const count = search.count;
  const feasible: number[] = [];
  const scores: number[] = [];
  const failed: NodeState[] = [];
  /** Refused nodes whose reason the memo kept (explained for this very state before). */
  const explained: NodeRejection[] = [];
  const rejected: number[] = [];
  const explain = options.explain ?? true;
  const gpus: number[] = [];
  const key = fast && options.memo ? memoKey(pol, ctx, fast, options.memo, scorers) : null;
  const table = key !== null && options.memo ? options.memo.table(key) : null;
  const n = nodes === null ? all.length : nodes.length;
  for (let j = 0; j < n; j++) {
    const ordinal = nodes === null ? j : (nodes[j] as number);
    const node = all[ordinal];
    if (node === undefined) continue;
    if (!fast) {
      failed.push(node);
      continue;
    }
    if (table !== null && table.states[ordinal] === node && !search.volatile(node)) {
      const ties = table.ties[ordinal];
      const memoryOk = fast.memoryOk(node);
      if (ties !== null && ties !== undefined && memoryOk) {
        feasible.push(ordinal);
        scores.push(table.scores[ordinal] as number);
      }
      else if (memoryOk && explain && table.reasons[ordinal] !== undefined) {
        explained.push(table.reasons[ordinal] as NodeRejection);
        rejected.push(ordinal);
      } else failed.push(node);
      continue;
    }
    if (judgeFast(node, ordinal, fast, search, table, gpus)) {
      feasible.push(ordinal);
      scores.push(search.nodeScore);
    } else failed.push(node);
  }
  if (failed.length === 0) return { status: 'evaluated', feasible, scores, rejections: explained, rejected };
  // The plugins explain the nodes the fused checks refused (and judge every node where there
  // are no fused checks: custom filters, MIG requests).
  const rejections: NodeRejection[] = explained;
  const one = new Search(scorers, identity, options.rng, count, 'first');
  const plugins = preparePlugins(ctx, filters, explain);
  for (const node of failed) {
    const rejection = judgeByPlugins(plugins, node, gpus) ?? (one.evaluate(node, gpus, gpus.length) ? null : { node: node.spec.name, reason: { kind: 'tooFewGpus' as const, requested: count, eligible: 0, gpus: [] } });
    if (rejection === null) {
      feasible.push(node.ordinal);
      scores.push(one.nodeScore);
      continue;
    }
    rejections.push(rejection);
    rejected.push(node.ordinal);
    if (explain && table !== null && table.states[node.ordinal] === node && fast?.memoryOk(node)) table.reasons[node.ordinal] = rejection;
  }
  return { status: 'evaluated', feasible, scores, rejections, rejected };
}

/**
 * What a node's evaluation depends on besides its state: the policy, the request's shape, the
 * workload model, the cluster's scale and topology flag, the tenant's memory quota left, and
 * what a prepared score says it reads beyond those (PreparedScore.memoKey).
 * Not the request's host memory: no built-in score reads it, and fastScan checks it apart
 * (a trace has many more host memory sizes than shapes). Null when a plugin is not a built-in
 * one (a custom plugin may read anything).
 */
function memoKey(pol: Policy, ctx: CycleContext, fast: Feasibility, memo: DecisionMemo, scorers: readonly Scorer[]): string | null {
  let p = '';
  for (const { plugin, weight } of pol.plugins) {
    if (SCORE_PLUGINS.get(plugin.name) !== plugin) return null;
    p += `${plugin.name}:${weight}+`;
  }
  // What a score reads beyond the node's state and the request (the cluster's, for `scarcity`).
  for (const { prepared } of scorers) if (prepared.memoKey !== undefined) p += `[${prepared.memoKey}]`;
  const { request, snapshot } = ctx;
  const s = request.slice;
  const mem = s.memory === null ? '-' : s.memory.kind === 'bytes' ? `${s.memory.bytes}b` : `${s.memory.fraction}f`;
  const sel = (x: { readonly include: readonly string[]; readonly exclude: readonly string[] }): string => `${x.include.join(',')}/${x.exclude.join(',')}`;
  const { scale } = snapshot;
  // A partition's answer also depends on its fixed SM ranges (a resuming one); its size is
  // the compute share, already in the key. The GPUs' SM layouts and held ranges are node state.
  const fixed = fast.partition?.fixed;
  return (
    `${p}|${request.cpuMilli}|${s.gpus}|${mem}|${s.compute}|${s.isolation}|${sel(s.models)}|${sel(s.uuids)}|${s.numaNode}` +
    `|${memo.workloadId(ctx.workload)}|${scale.cpuMilli}|${scale.memoryBytes}|${scale.computeMilli}|${snapshot.hasTopology}|${fast.quotaLeft}` +
    (fixed ? `|${fixed.map((r) => `${r.offset}+${r.count}`).join(',')}` : '')
  );
}

const NO_TIES: readonly number[] = [];

/** The fast path: fused checks, node summaries first, no reasons; answers from `table` where still valid. */
function fastScan(snapshot: ClusterSnapshot, fast: Feasibility, search: Search, table: MemoTable | null): Found | null {
  const feasible: number[] = [];
  const nodes = snapshot.nodes;
  for (let n = 0; n < nodes.length; n++) {
    const node = nodes[n] as NodeState;
    if (table !== null && table.states[n] === node && !search.volatile(node)) {
      const ties = table.ties[n];
      if (ties !== null && ties !== undefined && fast.memoryOk(node)) search.offer(node, table.scores[n] as number, ties);
      continue;
    }
    if (judgeFast(node, n, fast, search, table, feasible)) search.offer(node, search.nodeScore, search.nodeTies);
  }
  return search.found();
}

/**
 * Whether `node` (position `n`) takes the request by the fused checks, scored into
 * search.nodeScore/nodeTies when it does; the answer is kept in `table` when host memory did
 * not decide it (the memo key leaves memory out).
 */
function judgeFast(node: NodeState, n: number, fast: Feasibility, search: Search, table: MemoTable | null, gpus: number[]): boolean {
  const count = search.count;
  let ok = fast.node(node);
  if (ok) {
    const k = count > 0 ? fast.gpus(node, gpus) : 0;
    ok = k >= count && search.evaluate(node, gpus, k);
  }
  if (table !== null && fast.memoryOk(node) && !search.volatile(node)) {
    table.states[n] = node;
    table.scores[n] = ok ? search.nodeScore : NaN;
    table.ties[n] = ok ? (count === 0 ? NO_TIES : search.nodeTies.slice()) : null;
    // Read before writing: schedule() never explains into the memo, so its tables stay empty here.
    if (table.reasons[n] !== undefined) table.reasons[n] = undefined;
  }
  return ok;
}

/**
 * Each node's reason without per-GPU detail, as filterScan gives it with `explain` off (the
 * default chain's only node filter is nodeResources: CPU, then memory).
 */
function fastRejections(snapshot: ClusterSnapshot, ctx: CycleContext, fast: Feasibility): NodeRejection[] {
  const { request, demand } = ctx;
  const cpu = request.cpuMilli;
  const mem = request.memoryBytes;
  const checkHost = cpu > 0 || mem > 0;
  const count = demand.count;
  const slice = request.slice;
  const whole = count > 0 && (demand.exclusive || (slice.memory === null && slice.compute === null));
  const feasible: number[] = [];
  const rejections: NodeRejection[] = [];
  for (const node of snapshot.nodes) {
    const name = node.spec.name;
    if (checkHost && node.cpuFree < cpu) {
      rejections.push({ node: name, reason: { kind: 'insufficientCpu', requestedMilli: cpu, freeMilli: node.cpuFree } });
    } else if (checkHost && node.memoryFree < mem) {
      rejections.push({ node: name, reason: { kind: 'insufficientMemory', requestedBytes: mem, freeBytes: node.memoryFree } });
    } else {
      const short = node.spec.gpus.length < count || (whole && node.wholeGpusFree < count);
      const eligible = short ? 0 : fast.gpus(node, feasible);
      rejections.push({ node: name, reason: { kind: 'tooFewGpus', requested: count, eligible, gpus: [] } });
    }
  }
  return rejections;
}

/** The filter plugins on every node and GPU, with a reason for each node that fails. */
function filterScan(snapshot: ClusterSnapshot, ctx: CycleContext, filters: readonly FilterPlugin[], explain: boolean, search: Search): Decision {
  const plugins = preparePlugins(ctx, filters, explain);
  const rejections: NodeRejection[] = [];
  const feasible: number[] = [];
  for (const node of snapshot.nodes) {
    const rejection = judgeByPlugins(plugins, node, feasible);
    if (rejection) rejections.push(rejection);
    else if (search.evaluate(node, feasible, feasible.length)) search.offer(node, search.nodeScore, search.nodeTies);
  }
  const found = search.found();
  if (!found) return { status: 'unschedulable', rejections };
  return { status: 'ok', placement: toPlacement(ctx, found.node, found.gpus), score: found.score };
}

/** The filter plugins prepared for one decision, split by what they check. */
interface PreparedPlugins {
  readonly nodeFilters: readonly PreparedFilter[];
  readonly gpuFilters: readonly PreparedFilter[];
  readonly count: number;
  /** A request for whole GPUs needs GPUs nothing else holds (see demand.ts). */
  readonly whole: boolean;
  readonly explain: boolean;
  /** Reused per node (judgeByPlugins copies what it keeps). */
  readonly gpuReasons: GpuReason[];
}

function preparePlugins(ctx: CycleContext, filters: readonly FilterPlugin[], explain: boolean): PreparedPlugins {
  const nodeFilters: PreparedFilter[] = [];
  const gpuFilters: PreparedFilter[] = [];
  for (const f of filters) {
    const p = f.prepare(ctx);
    if (!p) continue;
    if (p.node) nodeFilters.push(p);
    if (p.gpu) gpuFilters.push(p);
  }
  const count = ctx.demand.count;
  const slice = ctx.request.slice;
  const whole = count > 0 && !ctx.demand.mig && (ctx.demand.exclusive || (slice.memory === null && slice.compute === null));
  return { nodeFilters, gpuFilters, count, whole, explain, gpuReasons: [] };
}

/**
 * Why `node` cannot take the request by the filter plugins (GPU by GPU when explaining), or
 * null with the GPUs that pass written into `feasible`.
 */
function judgeByPlugins(p: PreparedPlugins, node: NodeState, feasible: number[]): NodeRejection | null {
  const nodeReason = firstNodeReason(p.nodeFilters, node);
  if (nodeReason) return { node: node.spec.name, reason: nodeReason };
  const { count, explain, gpuReasons } = p;
  feasible.length = 0;
  gpuReasons.length = 0;
  if (count > 0 && !explain && (node.spec.gpus.length < count || (p.whole && node.wholeGpusFree < count))) {
    // Without explanations, a node that cannot have enough idle GPUs is out at once.
    return { node: node.spec.name, reason: { kind: 'tooFewGpus', requested: count, eligible: 0, gpus: [] } };
  }
  if (count === 0) return null;
  for (let i = 0; i < node.spec.gpus.length; i++) {
    const r = firstGpuReason(p.gpuFilters, node, i);
    if (r === null) feasible.push(i);
    else if (explain) gpuReasons.push(r);
  }
  if (feasible.length >= count) return null;
  return { node: node.spec.name, reason: { kind: 'tooFewGpus', requested: count, eligible: feasible.length, gpus: explain ? gpuReasons.slice() : [] } };
}

/** What a decision starts from: the policy resolved, admission passed, the score plugins prepared (in that order). */
interface Cycle {
  readonly pol: Policy;
  readonly ctx: CycleContext;
  readonly scorers: readonly Scorer[];
  /** Some plugin tells GPUs in the same state apart. */
  readonly identity: boolean;
  readonly tieMode: TieMode;
}

function startCycle(snapshot: ClusterSnapshot, request: PlacementRequest, options: ScheduleOptions): Cycle | { readonly status: 'unresolvable'; readonly reason: AdmissionReason } {
  const pol = resolvePolicy(request, options);
  if ('kind' in pol) return { status: 'unresolvable', reason: pol };
  if (snapshot.nodes.length === 0) return { status: 'unresolvable', reason: { kind: 'noNodes' } };
  const ctx: CycleContext = { snapshot, request, demand: demandOf(request), workload: options.workload ?? null };
  for (const a of options.admission ?? DEFAULT_ADMISSION) {
    const reason = a.admit(ctx);
    if (reason) return { status: 'unresolvable', reason };
  }
  const scorers: Scorer[] = [];
  let identity = false;
  let tieMode: TieMode = 'hash';
  for (const { plugin, weight } of pol.plugins) {
    if (plugin.tieMode === 'first') tieMode = 'first';
    const prepared = plugin.prepare(ctx);
    if (!prepared) continue;
    scorers.push({ prepared, weight, identity: plugin.gpuIdentity });
    identity ||= plugin.gpuIdentity;
  }
  return { pol, ctx, scorers, identity, tieMode };
}

function resolvePolicy(request: PlacementRequest, options: ScheduleOptions): Policy | { kind: 'unknownPolicy'; policy: string } {
  if (request.policy !== null) {
    const r = parsePolicy(request.policy);
    return r.ok ? r.value : { kind: 'unknownPolicy', policy: request.policy };
  }
  if (request.tenant !== null) {
    const t = options.tenantPolicies?.get(request.tenant);
    if (t) return t;
  }
  return options.policy;
}

function firstNodeReason(filters: readonly PreparedFilter[], node: NodeState) {
  for (const f of filters) {
    const r = f.node?.(node);
    if (r) return r;
  }
  return null;
}

function firstGpuReason(filters: readonly PreparedFilter[], node: NodeState, i: number): GpuReason | null {
  for (const f of filters) {
    const r = f.gpu?.(node, i);
    if (r) return r;
  }
  return null;
}

/**
 * How `score` compares with the best so far: 1 better, 0 tied, -1 worse. Scores within a
 * relative 1e-12 tie, so float noise in a sum of weights does not decide placements.
 */
function compare(score: number, best: number, hasBest: boolean): 1 | 0 | -1 {
  if (!hasBest) return 1;
  const d = score - best;
  const eps = TIE * Math.max(1, Math.abs(best));
  return d > eps ? 1 : d >= -eps ? 0 : -1;
}

interface Found {
  readonly node: NodeState;
  readonly gpus: readonly number[];
  readonly score: number;
}

/**
 * The running search over nodes. Each node offered is first evaluated on its own: its best
 * score and every candidate GPU set tied with it (`ties`, flattened, `count` GPUs each). Then
 * the node competes with the best so far; among tied candidates the tie-break of tiebreak.ts
 * decides (lowest hash rank of one draw per decision, or FGD's "first"). A node's evaluation
 * does not depend on the draw or on other nodes, which is what lets memo.ts cache it.
 *
 * Allocation-free per candidate: single GPUs are scored through one reused array (a score
 * plugin must not keep the array it is given), and only a new best is copied.
 */
class Search {
  private best: NodeState | null = null;
  private bestGpus: readonly number[] = [];
  private bestScore = -Infinity;
  private bestRank = 0;
  private readonly draw: number;
  private readonly one = [0];
  private readonly pref: number[] = [];
  private readonly order: number[] = [];
  /** With identity-aware scores that all give keys: per feasible position, the score and keys. */
  private readonly keyed: boolean;
  private readonly keyers: readonly PreparedScore[];
  private readonly volatiles: readonly PreparedScore[];
  private readonly scores: number[] = [];
  private readonly keys: number[] = [];
  /** The node being evaluated: its best score and its tied GPU sets (flattened). */
  nodeScore = -Infinity;
  readonly nodeTies: number[] = [];

  constructor(
    private readonly scorers: readonly Scorer[],
    private readonly identity: boolean,
    rng: Prng,
    readonly count: number,
    private readonly tieMode: TieMode,
  ) {
    this.keyers = scorers.filter((s) => s.prepared.gpuKey !== undefined).map((s) => s.prepared);
    this.volatiles = scorers.filter((s) => s.prepared.volatile !== undefined).map((s) => s.prepared);
    // Only identity-blind plugins and keyed identity-aware ones: then (class, keys) fixes the score.
    this.keyed = identity && count === 1 && this.keyers.length > 0 && scorers.every((s) => s.prepared.gpuKey !== undefined || !s.identity);
    this.draw = tieMode === 'hash' ? tieDraw(rng) : 0;
  }

  /** Whether some score of `node` reads more than its state (PreparedScore.volatile): the memo neither answers nor keeps it. */
  volatile(node: NodeState): boolean {
    for (const p of this.volatiles) if ((p.volatile as (node: NodeState) => boolean)(node)) return true;
    return false;
  }

  /**
   * An earlier feasible position whose GPU gets the same score as GPU `i` (position `a`), or -1:
   * same state class, same board name, health, MIG mode and exclusivity (what identity-blind
   * scores may read beyond the class), and equal keys from every identity-aware plugin.
   */
  private sameScoreAs(node: NodeState, feasible: readonly number[], a: number, i: number): number {
    const keyers = this.keyers;
    const nk = keyers.length;
    const keys = this.keys;
    for (let t = 0; t < nk; t++) keys[a * nk + t] = (keyers[t] as PreparedScore).gpuKey?.(node, i) ?? 0;
    const gi = node.spec.gpus[i] as GpuSpec;
    for (let b = 0; b < a; b++) {
      const j = feasible[b] as number;
      if (node.gpuClass[j] !== node.gpuClass[i] || node.gpuExclusive[j] !== node.gpuExclusive[i]) continue;
      const gj = node.spec.gpus[j] as GpuSpec;
      if (gj.name !== gi.name || gj.health !== gi.health || (gj.mig === null) !== (gi.mig === null)) continue;
      let t = 0;
      while (t < nk && keys[b * nk + t] === keys[a * nk + t]) t++;
      if (t === nk) return b;
    }
    return -1;
  }

  /**
   * Evaluates `node`, whose first `k` entries of `feasible` are the GPUs that pass the filters,
   * into nodeScore/nodeTies; false when it has no candidate.
   */
  evaluate(node: NodeState, feasible: readonly number[], k: number): boolean {
    const count = this.count;
    const ties = this.nodeTies;
    ties.length = 0;
    if (count === 0) {
      this.nodeScore = this.scoreOf(node, NO_GPUS);
      return true;
    }
    if (count === 1) {
      // Without identity-aware scores, GPUs in the same state tie: score one per class (the
      // lowest-indexed GPU of it), so the tie-break weighs classes, not GPUs, and the work
      // shrinks on half-empty nodes.
      const one = this.one;
      const dedupe = !this.identity;
      const keyed = this.keyed;
      const cls = node.gpuClass;
      let seen = 0;
      let have = false;
      let nodeScore = -Infinity;
      for (let a = 0; a < k; a++) {
        const i = feasible[a] as number;
        if (dedupe) {
          // GPU classes are equivalence classes, so "an earlier feasible GPU in the same state"
          // is "this class already seen"; nodes of over 31 GPUs use the pairwise check.
          const c = cls[i] as number;
          if (c < 31) {
            const bit = 1 << c;
            if ((seen & bit) !== 0) continue;
            seen |= bit;
          } else if (seenBefore(node, feasible, a, i)) continue;
        }
        let s: number;
        const reuse = keyed ? this.sameScoreAs(node, feasible, a, i) : -1;
        if (reuse >= 0) {
          // Same state and same identity keys as an earlier GPU: the same score.
          s = this.scores[reuse] as number;
        } else {
          one[0] = i;
          s = this.scoreOf(node, one);
        }
        if (keyed) this.scores[a] = s;
        const cmp = compare(s, nodeScore, have);
        if (cmp === 1) {
          have = true;
          nodeScore = s;
          ties.length = 0;
          ties.push(i);
        } else if (cmp === 0) ties.push(i);
      }
      this.nodeScore = nodeScore;
      return have;
    }
    let have = false;
    let nodeScore = -Infinity;
    const consider = (gpus: readonly number[]): void => {
      const s = this.scoreOf(node, gpus);
      const cmp = compare(s, nodeScore, have);
      if (cmp === 1) {
        have = true;
        nodeScore = s;
        ties.length = 0;
        for (const g of gpus) ties.push(g);
      } else if (cmp === 0) for (const g of gpus) ties.push(g);
    };
    consider(this.defaultSet(node, feasible, k));
    for (const { prepared } of this.scorers) {
      if (!prepared.propose) continue;
      for (const set of prepared.propose(node, feasible.slice(0, k), count)) consider(set);
    }
    this.nodeScore = nodeScore;
    return have;
  }

  /**
   * Offers a node's evaluation (score and tied sets, `count` GPUs each; one empty set when
   * the request has no GPUs) to the search over nodes.
   */
  offer(node: NodeState, score: number, ties: readonly number[]): void {
    const cmp = compare(score, this.bestScore, this.best !== null);
    if (cmp < 0) return;
    const count = this.count;
    const n = count === 0 ? 1 : ties.length / count;
    let pick = 0;
    let rank = 0;
    if (this.tieMode === 'hash') {
      rank = 0xffffffff + 1;
      for (let t = 0; t < n; t++) {
        const key = count === 1 ? gpuOneKey(ties[t] as number) : count === 0 ? 0 : gpuSetKey(ties.slice(t * count, t * count + count));
        const r = tieRank(this.draw, node.ordinal, key);
        if (r < rank) {
          rank = r;
          pick = t;
        }
      }
    }
    if (cmp === 0) {
      const wins = this.tieMode === 'hash' ? rank < this.bestRank : node.spec.name < (this.best as NodeState).spec.name;
      if (!wins) return;
    } else this.bestScore = score;
    this.best = node;
    this.bestRank = rank;
    this.bestGpus = count === 0 ? NO_GPUS : ties.slice(pick * count, pick * count + count);
  }

  found(): Found | null {
    return this.best === null ? null : { node: this.best, gpus: this.bestGpus, score: this.bestScore };
  }

  private scoreOf(node: NodeState, gpus: readonly number[]): number {
    const scorers = this.scorers;
    let s = 0;
    for (let j = 0; j < scorers.length; j++) {
      const sc = scorers[j] as Scorer;
      s += sc.weight * sc.prepared.score(node, gpus);
    }
    return s;
  }

  /** The `count` feasible GPUs the policy prefers one by one (index order on ties), in index order. */
  private defaultSet(node: NodeState, feasible: readonly number[], k: number): number[] {
    const count = this.count;
    let withGpu = false;
    for (const { prepared } of this.scorers) if (prepared.gpu) withGpu = true;
    if (!withGpu) return feasible.slice(0, count);
    const pref = this.pref;
    const order = this.order;
    for (let a = 0; a < k; a++) {
      const i = feasible[a] as number;
      let p = 0;
      for (const { prepared, weight } of this.scorers) if (prepared.gpu) p += weight * prepared.gpu(node, i);
      // Insertion sort by preference, then index: n is a node's GPU count.
      let b = a;
      while (b > 0 && (pref[b - 1] as number) < p) {
        pref[b] = pref[b - 1] as number;
        order[b] = order[b - 1] as number;
        b -= 1;
      }
      pref[b] = p;
      order[b] = i;
    }
    return order.slice(0, count).sort((x, y) => x - y);
  }
}

const NO_GPUS: readonly number[] = [];

/** Whether a feasible GPU before position `a` is in the same state as GPU `i`. */
function seenBefore(node: NodeState, feasible: readonly number[], a: number, i: number): boolean {
  const cls = node.gpuClass[i];
  for (let b = 0; b < a; b++) if (node.gpuClass[feasible[b] as number] === cls) return true;
  return false;
}

function toPlacement(ctx: CycleContext, node: NodeState, gpus: readonly number[]): Placement {
  const { request, demand } = ctx;
  const partition = partitionAsk(ctx);
  const shares: GpuShare[] = gpus.map((i, position) => {
    const g = node.spec.gpus[i] as GpuSpec;
    if (demand.mig) {
      const bytes = request.slice.migProfile === null ? demand.memoryOn(g) : null;
      const choice = chooseMigInstance(node, i, request.slice.migProfile, bytes);
      if (!choice) throw new Error(`bug: MIG GPU ${i} of ${node.spec.name} passed migFit but has no instance`);
      return {
        gpu: i,
        memoryBytes: choice.memoryBytes,
        computeMilli: migComputeMilli(choice.profile, g),
        mig: { instanceId: choice.instanceId, profile: choice.profile },
      };
    }
    const share: GpuShare = { gpu: i, memoryBytes: demand.memoryOn(g), computeMilli: demand.computeOn(g), mig: null };
    return partition === null ? share : { ...share, smRange: partitionRangeOn(node, i, position, partition) };
  });
  return {
    id: request.id,
    node: node.spec.name,
    gpus: shares,
    cpuMilli: request.cpuMilli,
    memoryBytes: request.memoryBytes,
    priority: request.slice.priority,
    tenant: request.tenant,
    exclusive: demand.exclusive,
    suspendable: request.suspendable,
    gang: request.gang,
  };
}
