/**
 * Where a task goes, SM partitions included: the scheduler's placement, then the partitions on
 * it. A GPU that cannot take the partition (no free run of SMs, other work on it, cannot be
 * partitioned) is left out and the scheduler asked again, once per GPU at most. Pure: the
 * queue planner calls it with the snapshot and the holders of its pass.
 *
 * Interim: SM-partition feasibility is moving into the scheduler (a filter with structured
 * reasons); then `placeTask` is `schedule` alone and this module goes.
 */
import type { Gpu, SmGroups } from '../domain/index.js';
import { schedule, type ClusterSnapshot, type Decision, type NodeSpec, type Placement, type Policy, type Prng } from '../scheduler/index.js';
import type { Task, TaskSmRange } from '../contract/task.js';
import { fitPartitions, placementRequest, taskGpus, type Holder } from './placement.js';

export interface PlacerContext {
  readonly node: NodeSpec;
  readonly policy: Policy;
  readonly rng: Prng;
  /** The machine's GPUs as the backend reports them (SM counts for partitions). */
  readonly devices: readonly Gpu[];
  readonly smGroups?: ReadonlyMap<string, SmGroups> | undefined;
}

export interface TaskPlacement {
  readonly decision: Decision;
  readonly ranges: TaskSmRange[] | null;
  /** Set when the scheduler had room but the partitions did not. */
  readonly partitionWhy: string | null;
}

/** A queued task's placement (or the scheduler's refusal), with its SM ranges if it is a partition. */
export function placeTask(ctx: PlacerContext, snapshot: ClusterSnapshot, task: Task, holders: readonly Holder[]): TaskPlacement {
  let request = task.request;
  let partitionWhy: string | null = null;
  let first: Decision | null = null;
  for (let attempt = 0; attempt <= ctx.node.gpus.length; attempt++) {
    const decision = schedule(snapshot, placementRequest({ ...task, request }), { policy: ctx.policy, rng: ctx.rng });
    first ??= decision;
    if (decision.status !== 'ok') return { decision: partitionWhy === null ? decision : first, ranges: null, partitionWhy };
    const fit = fitPartitions(task, taskGpus(decision.placement, ctx.node), ctx.devices, holders, null, ctx.smGroups);
    if (fit.ok) return { decision, ranges: fit.ranges, partitionWhy: null };
    partitionWhy = partitionWhy === null ? fit.why : `${partitionWhy}; ${fit.why}`;
    request = { ...request, uuids: { include: request.uuids.include, exclude: [...request.uuids.exclude, fit.uuid] } };
  }
  return { decision: first ?? { status: 'unresolvable', reason: { kind: 'noNodes' } }, ranges: null, partitionWhy };
}

/**
 * Where a suspended task resumes: its own GPUs if they have room again, else other GPUs of the
 * same model (restore remaps them), else nowhere. A partition needs its old SMs free. `refusal`
 * is the scheduler's answer for its own GPUs when it goes nowhere (null: the scheduler had room
 * but the partition's SMs are taken).
 */
export function placeResume(ctx: PlacerContext, snapshot: ClusterSnapshot, task: Task, holders: readonly Holder[]): { readonly placement: Placement } | { readonly placement: null; readonly refusal: Decision | null } {
  const seen: { refusal: Decision | null } = { refusal: null };
  const tryRequest = (request: Task['request']): Placement | null => {
    const d = schedule(snapshot, placementRequest({ ...task, request }), { policy: ctx.policy, rng: ctx.rng });
    if (d.status !== 'ok') {
      seen.refusal ??= d;
      return null;
    }
    return fitPartitions(task, taskGpus(d.placement, ctx.node), ctx.devices, holders, task.smRanges, ctx.smGroups).ok ? d.placement : null;
  };
  const old = task.gpus ?? [];
  const found = ((): Placement | null => {
    if (old.length === 0) return tryRequest(task.request);
    const same = tryRequest({ ...task.request, uuids: { include: old.map((g) => g.uuid), exclude: [] } });
    if (same) return same;
    const models = [...new Set(old.map((g) => ctx.node.gpus.find((s) => s.uuid === g.uuid)?.model))];
    if (models.length !== 1 || models[0] === undefined) return null;
    return tryRequest({ ...task.request, models: { include: [models[0]], exclude: [] }, uuids: { include: [], exclude: [] } });
  })();
  return found ? { placement: found } : { placement: null, refusal: seen.refusal };
}
