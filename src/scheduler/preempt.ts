/**
 * The preemption planner: for a request that fits nowhere, the smallest set of lower-priority
 * slices on one node whose removal makes it fit, preferring slices that can be suspended
 * (checkpointed to host memory and resumed later) over ones that must be killed.
 */
import { schedule, type ScheduleOptions } from './engine.js';
import { buildSnapshot } from './snapshot.js';
import type { ClusterSnapshot, NodeState, Placement, PlacementRequest } from './types.js';

export interface PreemptionAction {
  readonly placement: Placement;
  /** Suspend where the slice allows it; evict (kill) otherwise. */
  readonly action: 'suspend' | 'evict';
}

export interface PreemptionPlan {
  readonly node: string;
  readonly actions: readonly PreemptionAction[];
  /** Where the request goes once the actions are done. */
  readonly placement: Placement;
}

/** Lower cost first: fewer victims, then fewer kills, then lower priorities. */
function cost(victims: readonly Placement[]): [number, number, number] {
  return [victims.length, victims.filter((v) => !v.suspendable).length, Math.max(-1, ...victims.map((v) => v.priority))];
}

function cheaper(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  }
  return false;
}

/**
 * A plan, or null when removing every lower-priority slice of any single node would still not
 * make room. Gang members go together: taking one takes its whole gang (all lower priority).
 */
export function planPreemption(snapshot: ClusterSnapshot, request: PlacementRequest, options: ScheduleOptions): PreemptionPlan | null {
  const priority = request.slice.priority;
  const gangs = new Map<string, Placement[]>();
  for (const n of snapshot.nodes) {
    for (const p of n.placements) {
      if (p.gang === null) continue;
      const g = gangs.get(p.gang);
      if (g) g.push(p);
      else gangs.set(p.gang, [p]);
    }
  }
  let best: { plan: PreemptionPlan; cost: [number, number, number] } | null = null;
  for (const node of snapshot.nodes) {
    const plan = planOnNode(node, request, options, priority, gangs, snapshot);
    if (!plan) continue;
    const c = cost(plan.actions.map((a) => a.placement));
    if (!best || cheaper(c, best.cost)) best = { plan, cost: c };
  }
  return best?.plan ?? null;
}

function planOnNode(
  node: NodeState,
  request: PlacementRequest,
  options: ScheduleOptions,
  priority: number,
  gangs: ReadonlyMap<string, readonly Placement[]>,
  snapshot: ClusterSnapshot,
): PreemptionPlan | null {
  // A candidate unit is a slice, or a whole gang when the slice belongs to one.
  const units: Placement[][] = [];
  const seenGangs = new Set<string>();
  for (const p of node.placements) {
    if (p.priority >= priority) continue;
    if (p.gang === null) units.push([p]);
    else if (!seenGangs.has(p.gang)) {
      seenGangs.add(p.gang);
      const members = gangs.get(p.gang) ?? [p];
      if (members.every((m) => m.priority < priority)) units.push([...members]);
    }
  }
  if (units.length === 0) return null;
  // Try the cheapest units first: suspendable, low priority, small.
  units.sort((a, b) => Number(a.some((p) => !p.suspendable)) - Number(b.some((p) => !p.suspendable)) || maxPriority(a) - maxPriority(b) || a.length - b.length);
  const fits = (removed: readonly Placement[][]): ReturnType<typeof schedule> => {
    const ids = new Set(removed.flat().map((p) => p.id));
    // Decide on this node alone, with the cluster's quotas and the usage those removals free.
    const kept = node.placements.filter((p) => !ids.has(p.id));
    const single = buildSnapshot([node.spec], kept, snapshot.quotas);
    const usage = new Map(snapshot.usage);
    for (const p of removed.flat()) {
      if (p.tenant === null) continue;
      const u = usage.get(p.tenant);
      if (!u) continue;
      usage.set(p.tenant, {
        gpus: u.gpus - p.gpus.length,
        memoryBytes: u.memoryBytes - p.gpus.reduce((s, g) => s + g.memoryBytes, 0),
        computeMilli: u.computeMilli - p.gpus.reduce((s, g) => s + g.computeMilli, 0),
      });
    }
    return schedule({ ...single, usage }, request, options);
  };
  const chosen: Placement[][] = [];
  let decision = fits(chosen);
  for (const u of units) {
    if (decision.status === 'ok') break;
    chosen.push(u);
    decision = fits(chosen);
  }
  if (decision.status !== 'ok') return null;
  // Drop any unit the request turned out not to need (last added kept: it made the fit).
  for (let i = chosen.length - 2; i >= 0; i--) {
    const without = chosen.filter((_, k) => k !== i);
    const d = fits(without);
    if (d.status === 'ok') {
      chosen.splice(i, 1);
      decision = d;
    }
  }
  const victims = chosen.flat();
  return {
    node: node.spec.name,
    actions: victims.map((p) => ({ placement: p, action: p.suspendable ? 'suspend' : 'evict' })),
    placement: decision.placement,
  };
}

function maxPriority(ps: readonly Placement[]): number {
  return Math.max(...ps.map((p) => p.priority));
}
