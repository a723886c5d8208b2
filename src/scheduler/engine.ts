/**
 * The placement engine: admission, then filter every node and GPU, then score the candidate
 * GPU sets of the nodes that pass, and pick the best (ties broken by the seeded PRNG). Pure: the
 * same snapshot, request, options and PRNG state give the same decision.
 */
import { demandOf, migComputeMilli } from './demand.js';
import { prepareFeasibility, type Feasibility } from './feasibility.js';
import type { AdmissionPlugin, CycleContext, FilterPlugin, PreparedFilter, PreparedScore } from './framework.js';
import { chooseMigInstance } from './mig.js';
import { exclusivity, gpuCapacity, health, migFit, migMode, nodeResources, selectors } from './plugins/filters.js';
import { quotaAdmission, quotaMemory } from './plugins/quota.js';
import { parsePolicy, type Policy } from './policy.js';
import type { Prng } from './prng.js';
import type { WorkloadModel } from './workload.js';
import type { ClusterSnapshot, Decision, GpuReason, GpuShare, GpuSpec, NodeRejection, NodeState, Placement, PlacementRequest } from './types.js';

/** The default filter chain, cheapest and most telling first. */
export const DEFAULT_FILTERS: readonly FilterPlugin[] = [nodeResources, health, migMode, selectors, exclusivity, gpuCapacity, migFit, quotaMemory];
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
 * testing/reference-engine.ts, PRNG draws included). With the default filters and a non-MIG
 * request, the fused checks of feasibility.ts pick the candidates and no reasons are built;
 * with custom filters, a MIG request, or when nothing fits, the filter plugins run on every
 * node, so an explanation costs time only when there is something to explain.
 */
export function schedule(snapshot: ClusterSnapshot, request: PlacementRequest, options: ScheduleOptions): Decision {
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
  for (const { plugin, weight } of pol.plugins) {
    const prepared = plugin.prepare(ctx);
    if (!prepared) continue;
    scorers.push({ prepared, weight, identity: plugin.gpuIdentity });
    identity ||= plugin.gpuIdentity;
  }
  const search = new Search(scorers, identity, options.rng, ctx.demand.count);
  const filters = options.filters ?? DEFAULT_FILTERS;
  const fast = filters === DEFAULT_FILTERS ? prepareFeasibility(ctx) : null;
  if (fast) {
    const found = fastScan(snapshot, fast, search);
    if (found) return { status: 'ok', placement: toPlacement(ctx, found.node, found.gpus), score: found.score };
    // Nothing fits. Without explanations the fused checks also give each node's reason;
    // with them, the plugins below say why (and, as the fused checks agree with them, find no
    // candidate either, so no PRNG draw happens there).
    if (!(options.explain ?? true)) return { status: 'unschedulable', rejections: fastRejections(snapshot, ctx, fast) };
  }
  return filterScan(snapshot, ctx, filters, options.explain ?? true, search);
}

/** The fast path: fused checks, node summaries first, no reasons. */
function fastScan(snapshot: ClusterSnapshot, fast: Feasibility, search: Search): Found | null {
  const feasible: number[] = [];
  const count = search.count;
  const nodes = snapshot.nodes;
  for (let n = 0; n < nodes.length; n++) {
    const node = nodes[n] as NodeState;
    if (!fast.node(node)) continue;
    const k = count > 0 ? fast.gpus(node, feasible) : 0;
    if (k < count) continue;
    search.node(node, feasible, k);
  }
  return search.found();
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
  const nodeFilters: PreparedFilter[] = [];
  const gpuFilters: PreparedFilter[] = [];
  for (const f of filters) {
    const p = f.prepare(ctx);
    if (!p) continue;
    if (p.node) nodeFilters.push(p);
    if (p.gpu) gpuFilters.push(p);
  }
  const count = ctx.demand.count;
  // A request for whole GPUs needs GPUs nothing else holds (see demand.ts).
  const slice = ctx.request.slice;
  const whole = count > 0 && !ctx.demand.mig && (ctx.demand.exclusive || (slice.memory === null && slice.compute === null));
  const rejections: NodeRejection[] = [];
  const feasible: number[] = [];
  const gpuReasons: GpuReason[] = [];
  for (const node of snapshot.nodes) {
    const nodeReason = firstNodeReason(nodeFilters, node);
    if (nodeReason) {
      rejections.push({ node: node.spec.name, reason: nodeReason });
      continue;
    }
    feasible.length = 0;
    gpuReasons.length = 0;
    if (count > 0 && !explain && (node.spec.gpus.length < count || (whole && node.wholeGpusFree < count))) {
      // Without explanations, a node that cannot have enough idle GPUs is out at once.
      rejections.push({ node: node.spec.name, reason: { kind: 'tooFewGpus', requested: count, eligible: 0, gpus: [] } });
      continue;
    }
    if (count > 0) {
      for (let i = 0; i < node.spec.gpus.length; i++) {
        const r = firstGpuReason(gpuFilters, node, i);
        if (r === null) feasible.push(i);
        else if (explain) gpuReasons.push(r);
      }
      if (feasible.length < count) {
        rejections.push({
          node: node.spec.name,
          reason: { kind: 'tooFewGpus', requested: count, eligible: feasible.length, gpus: explain ? gpuReasons.slice() : [] },
        });
        continue;
      }
    }
    search.node(node, feasible, feasible.length);
  }
  const found = search.found();
  if (!found) return { status: 'unschedulable', rejections };
  return { status: 'ok', placement: toPlacement(ctx, found.node, found.gpus), score: found.score };
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
 * The running search over nodes: the best candidate GPU set of each node offered to it, then
 * the best node, ties broken by reservoir sampling (each of k tied candidates ends up chosen
 * with probability 1/k). Candidates are scored in a fixed order (nodes in snapshot order, a
 * node's GPUs in index order) so that a seed gives the same decision on any path.
 *
 * Allocation-free per candidate: single GPUs are scored through one reused array (a score
 * plugin must not keep the array it is given), and only a new best is copied.
 */
class Search {
  private best: NodeState | null = null;
  private bestGpus: readonly number[] = [];
  private bestScore = -Infinity;
  private ties = 0;
  private readonly one = [0];
  private readonly pref: number[] = [];
  private readonly order: number[] = [];
  /** With identity-aware scores that all give keys: per feasible position, the score and keys. */
  private readonly keyed: boolean;
  private readonly keyers: readonly PreparedScore[];
  private readonly scores: number[] = [];
  private readonly keys: number[] = [];

  constructor(
    private readonly scorers: readonly Scorer[],
    private readonly identity: boolean,
    private readonly rng: Prng,
    readonly count: number,
  ) {
    this.keyers = scorers.filter((s) => s.prepared.gpuKey !== undefined).map((s) => s.prepared);
    // Only identity-blind plugins and keyed identity-aware ones: then (class, keys) fixes the score.
    this.keyed = identity && count === 1 && this.keyers.length > 0 && scorers.every((s) => s.prepared.gpuKey !== undefined || !s.identity);
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

  /** Offers `node`, whose first `k` entries of `feasible` are the GPUs that pass the filters. */
  node(node: NodeState, feasible: readonly number[], k: number): void {
    const count = this.count;
    if (count === 0) {
      this.offer(node, NO_GPUS, this.scoreOf(node, NO_GPUS), true);
      return;
    }
    if (count === 1) {
      // Without identity-aware scores, GPUs in the same state tie: score one per class, so the
      // tie-break weighs classes (not GPUs) and the work shrinks on half-empty nodes.
      const one = this.one;
      const dedupe = !this.identity;
      const keyed = this.keyed;
      const cls = node.gpuClass;
      let seen = 0;
      let nodeBest = -1;
      let nodeScore = -Infinity;
      let nodeTies = 0;
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
          // Same state and same identity keys as an earlier GPU: the same score, so the same
          // comparison (and PRNG draw) as scoring it again would give.
          s = this.scores[reuse] as number;
        } else {
          one[0] = i;
          s = this.scoreOf(node, one);
        }
        if (keyed) this.scores[a] = s;
        const cmp = compare(s, nodeScore, nodeBest >= 0);
        if (cmp === 1) {
          nodeBest = i;
          nodeScore = s;
          nodeTies = 1;
        } else if (cmp === 0) {
          nodeTies += 1;
          if (this.rng.int(nodeTies) === 0) nodeBest = i;
        }
      }
      if (nodeBest >= 0) this.offerOne(node, nodeBest, nodeScore);
      return;
    }
    let nodeGpus: readonly number[] | null = null;
    let nodeScore = -Infinity;
    let nodeTies = 0;
    const consider = (gpus: readonly number[]): void => {
      const s = this.scoreOf(node, gpus);
      const cmp = compare(s, nodeScore, nodeGpus !== null);
      if (cmp === 1) {
        nodeGpus = gpus;
        nodeScore = s;
        nodeTies = 1;
      } else if (cmp === 0) {
        nodeTies += 1;
        if (this.rng.int(nodeTies) === 0) nodeGpus = gpus;
      }
    };
    consider(this.defaultSet(node, feasible, k));
    for (const { prepared } of this.scorers) {
      if (!prepared.propose) continue;
      for (const set of prepared.propose(node, feasible.slice(0, k), count)) consider(set);
    }
    if (nodeGpus !== null) this.offer(node, nodeGpus, nodeScore, false);
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

  private offerOne(node: NodeState, gpu: number, score: number): void {
    const cmp = compare(score, this.bestScore, this.best !== null);
    if (cmp === 1) {
      this.take(node, [gpu], score);
    } else if (cmp === 0) {
      this.ties += 1;
      if (this.rng.int(this.ties) === 0) {
        this.best = node;
        this.bestGpus = [gpu];
      }
    }
  }

  private offer(node: NodeState, gpus: readonly number[], score: number, shared: boolean): void {
    const cmp = compare(score, this.bestScore, this.best !== null);
    if (cmp === 1) {
      this.take(node, shared ? gpus.slice() : gpus, score);
    } else if (cmp === 0) {
      this.ties += 1;
      if (this.rng.int(this.ties) === 0) {
        this.best = node;
        this.bestGpus = shared ? gpus.slice() : gpus;
      }
    }
  }

  private take(node: NodeState, gpus: readonly number[], score: number): void {
    this.best = node;
    this.bestGpus = gpus;
    this.bestScore = score;
    this.ties = 1;
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
  const shares: GpuShare[] = gpus.map((i) => {
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
    return { gpu: i, memoryBytes: demand.memoryOn(g), computeMilli: demand.computeOn(g), mig: null };
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
