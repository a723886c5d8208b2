/**
 * Gangs: requests that run only together (e.g. the workers of one training job) are placed
 * all-or-nothing. Each member is decided on the snapshot that already holds the members before
 * it, so members compete for room (and quota) as they will once running.
 */
import { schedule, type ScheduleOptions } from './engine.js';
import { withPlacement } from './snapshot.js';
import type { ClusterSnapshot, Decision, Placement, PlacementRequest } from './types.js';

export type GangDecision =
  | { readonly status: 'ok'; readonly placements: readonly Placement[]; readonly snapshot: ClusterSnapshot }
  /** `failed` is the member that could not be placed after the others were; nothing is committed. */
  | { readonly status: 'unschedulable'; readonly failed: string; readonly decision: Exclude<Decision, { status: 'ok' }> };

/** Places every member or none. Larger members go first: they are the hardest to fit later. */
export function scheduleGang(snapshot: ClusterSnapshot, members: readonly PlacementRequest[], options: ScheduleOptions): GangDecision {
  const order = members
    .map((m, i) => ({ m, i }))
    .sort((a, b) => b.m.slice.gpus - a.m.slice.gpus || a.i - b.i)
    .map((x) => x.m);
  let working = snapshot;
  const placements: Placement[] = [];
  for (const m of order) {
    const d = schedule(working, m, options);
    if (d.status !== 'ok') return { status: 'unschedulable', failed: m.id, decision: d };
    placements.push(d.placement);
    working = withPlacement(working, d.placement);
  }
  return { status: 'ok', placements, snapshot: working };
}
