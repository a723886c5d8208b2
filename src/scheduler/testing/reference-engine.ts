/**
 * The reference engine: the first, naive implementation of engine.ts (every node, every GPU
 * through the filter plugins, candidate arrays allocated per GPU), kept as the oracle the fast
 * engine must agree with, decision for decision and PRNG draw for PRNG draw
 * (engine.fastpath.test.ts). Not exported from the package. It uses the same tie-break
 * (tiebreak.ts), done the obvious way: every node scored, in order, no memo.
 */
import { demandOf, migComputeMilli } from '../demand.js';
import type { CycleContext, PreparedFilter, PreparedScore } from '../framework.js';
import { chooseMigInstance } from '../mig.js';
import { DEFAULT_ADMISSION, DEFAULT_FILTERS, type ScheduleOptions } from '../engine.js';
import { partitionAsk, partitionRangeOn } from '../plugins/partition.js';
import { parsePolicy, type Policy } from '../policy.js';
import { gpuSetKey, tieDraw, tieRank, type TieMode } from '../tiebreak.js';
import type { ClusterSnapshot, Decision, GpuReason, GpuShare, GpuSpec, NodeRejection, NodeState, Placement, PlacementRequest } from '../types.js';

interface Scorer {
  readonly prepared: PreparedScore;
  readonly weight: number;
}

/** Relative difference under which two scores count as a tie. */
const TIE = 1e-12;

/** Decides where `request` goes on `snapshot`, or says why it cannot go anywhere. */
export function scheduleReference(snapshot: ClusterSnapshot, request: PlacementRequest, options: ScheduleOptions): Decision {
  const pol = resolvePolicy(request, options);
  if ('kind' in pol) return { status: 'unresolvable', reason: pol };
  if (snapshot.nodes.length === 0) return { status: 'unresolvable', reason: { kind: 'noNodes' } };
  const ctx: CycleContext = { snapshot, request, demand: demandOf(request), workload: options.workload ?? null };
  for (const a of options.admission ?? DEFAULT_ADMISSION) {
    const reason = a.admit(ctx);
    if (reason) return { status: 'unresolvable', reason };
  }

  const nodeFilters: PreparedFilter[] = [];
  const gpuFilters: PreparedFilter[] = [];
  for (const f of options.filters ?? DEFAULT_FILTERS) {
    const p = f.prepare(ctx);
    if (!p) continue;
    if (p.node) nodeFilters.push(p);
    if (p.gpu) gpuFilters.push(p);
  }
  const scorers: Scorer[] = [];
  let identity = false;
  let mode: TieMode = 'hash';
  for (const { plugin, weight } of pol.plugins) {
    if (plugin.tieMode === 'first') mode = 'first';
    const prepared = plugin.prepare(ctx);
    if (!prepared) continue;
    scorers.push({ prepared, weight });
    identity ||= plugin.gpuIdentity;
  }

  const explain = options.explain ?? true;
  const count = ctx.demand.count;
  // A request for whole GPUs needs GPUs nothing else holds (see demand.ts).
  const slice = request.slice;
  const whole = count > 0 && !ctx.demand.mig && (ctx.demand.exclusive || (slice.memory === null && slice.compute === null));
  const rejections: NodeRejection[] = [];
  const feasible: number[] = [];
  const gpuReasons: GpuReason[] = [];
  // One draw per decision; each tied candidate's rank is a hash of it (tiebreak.ts).
  const draw = mode === 'hash' ? tieDraw(options.rng) : 0;
  let best: { node: NodeState; gpus: readonly number[]; rank: number } | null = null;
  let bestScore = -Infinity;

  for (const node of snapshot.nodes) {
    const nodeReason = firstNodeReason(nodeFilters, node);
    if (nodeReason) {
      rejections.push({ node: node.spec.name, reason: nodeReason });
      continue;
    }
    feasible.length = 0;
    gpuReasons.length = 0;
    if (count > 0 && !explain && (node.spec.gpus.length < count || (whole && node.wholeGpusFree < count))) {
      // Fast path: without explanations, a node that cannot have enough idle GPUs is out at once.
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
    const pick = bestOnNode(node, feasible, count, scorers, identity);
    if (!pick) continue;
    const c = compare(pick.score, bestScore, best !== null);
    if (c < 0) continue;
    // The node's own winner among its tied sets: lowest rank, or the first one.
    const ranked = pick.ties.map((gpus) => ({ gpus, rank: mode === 'hash' ? tieRank(draw, node.ordinal, gpuSetKey(gpus)) : 0 }));
    let mine = ranked[0] as { gpus: readonly number[]; rank: number };
    for (const r of ranked) if (r.rank < mine.rank) mine = r;
    if (c === 1) {
      best = { node, ...mine };
      bestScore = pick.score;
    } else if (best !== null && (mode === 'hash' ? mine.rank < best.rank : node.spec.name < best.node.spec.name)) {
      best = { node, ...mine };
    }
  }
  if (!best) return { status: 'unschedulable', rejections };
  return { status: 'ok', placement: toPlacement(ctx, best.node, best.gpus), score: bestScore };
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

function scoreOf(scorers: readonly Scorer[], node: NodeState, gpus: readonly number[]): number {
  let s = 0;
  for (const { prepared, weight } of scorers) s += weight * prepared.score(node, gpus);
  return s;
}

/** Two GPUs a score cannot tell apart unless it looks at identity (links, NUMA). */
function sameState(node: NodeState, a: number, b: number): boolean {
  const ga = node.spec.gpus[a] as GpuSpec;
  const gb = node.spec.gpus[b] as GpuSpec;
  return (
    node.gpuComputeFree[a] === node.gpuComputeFree[b] &&
    node.gpuMemoryFree[a] === node.gpuMemoryFree[b] &&
    node.gpuSlices[a] === node.gpuSlices[b] &&
    ga.computeMilli === gb.computeMilli &&
    ga.memoryBytes === gb.memoryBytes &&
    ga.model === gb.model
  );
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

/** The best score on one node and every candidate GPU set tied with it, in the order scored. */
function bestOnNode(
  node: NodeState,
  feasible: readonly number[],
  count: number,
  scorers: readonly Scorer[],
  identity: boolean,
): { ties: (readonly number[])[]; score: number } | null {
  if (count === 0) return { ties: [[]], score: scoreOf(scorers, node, []) };
  let ties: (readonly number[])[] = [];
  let bestScore = -Infinity;
  let sets: readonly (readonly number[])[];
  if (count === 1) {
    const singles: number[][] = [];
    for (let k = 0; k < feasible.length; k++) {
      const i = feasible[k] as number;
      let seen = false;
      // Without identity-aware scores, equivalent GPUs tie: score one per class (its first
      // GPU), so the tie-break weighs classes (not GPUs).
      for (let j = 0; j < k && !seen && !identity; j++) seen = sameState(node, feasible[j] as number, i);
      if (!seen) singles.push([i]);
    }
    sets = singles;
  } else {
    const all: (readonly number[])[] = [defaultSet(node, feasible, count, scorers)];
    for (const { prepared } of scorers) if (prepared.propose) all.push(...prepared.propose(node, feasible, count));
    sets = all;
  }
  for (const gpus of sets) {
    const s = scoreOf(scorers, node, gpus);
    const c = compare(s, bestScore, ties.length > 0);
    if (c === 1) {
      ties = [gpus];
      bestScore = s;
    } else if (c === 0) ties.push(gpus);
  }
  return ties.length === 0 ? null : { ties, score: bestScore };
}

/** The `count` feasible GPUs the policy prefers one by one (index order on ties). */
function defaultSet(node: NodeState, feasible: readonly number[], count: number, scorers: readonly Scorer[]): number[] {
  const withGpu = scorers.filter((s) => s.prepared.gpu);
  if (withGpu.length === 0) return feasible.slice(0, count);
  const pref = (i: number): number => {
    let s = 0;
    for (const { prepared, weight } of withGpu) s += weight * (prepared.gpu?.(node, i) ?? 0);
    return s;
  };
  return feasible
    .map((i) => ({ i, p: pref(i) }))
    .sort((a, b) => b.p - a.p || a.i - b.i)
    .slice(0, count)
    .map((x) => x.i)
    .sort((a, b) => a - b);
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
