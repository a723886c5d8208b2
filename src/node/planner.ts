/**
 * The queue planner: what to do next with the queue, decided without doing it. Pure (no I/O, no
 * clock; the PRNG comes in with the context): the daemon commits the actions and the lifecycle
 * layer performs them (decide, then commit, then perform).
 *
 * The queue's rules:
 * - Tasks go in queue order: priority, then arrival. Suspended tasks waiting to resume
 *   (`autoResume`) take their turn in that order like queued ones.
 * - The first task that does not fit stops the pass: later, smaller tasks do not jump it (no
 *   backfill), so big tasks are never starved. The tasks behind it wait `behind` it.
 * - Except a task held back only by its own tenant's quota: it waits without holding up others.
 * - A task that stops the pass may preempt lower-priority tasks (the scheduler's
 *   planPreemption, by the preemption policy), one preemption at a time: while any task is
 *   being suspended, nothing more is preempted.
 * Every action carries its reason as data (contract/task.ts WaitReason).
 */
import { createPrng, planPreemption, schedule, withPlacement, type ClusterSnapshot, type Decision, type NodeSpec, type Placement, type Policy, type Prng } from '../scheduler/index.js';
import type { Task, TaskGpu, TaskSmRange, WaitReason } from '../contract/task.js';
import { placementRequest, taskGpus, taskSmRanges } from './placement.js';
import { heldOnlyByQuota, noRoom, quotaRefusal, smPartitionWait } from './reasons.js';

/**
 * What a higher-priority task that does not fit may do to lower-priority ones: `suspend` them
 * (never kill; the default), `suspend-then-kill` (kill those that cannot be suspended, the last
 * resort), or nothing (`off`).
 */
export const PREEMPTION_POLICIES = ['suspend', 'suspend-then-kill', 'off'] as const;
export type PreemptionPolicy = (typeof PREEMPTION_POLICIES)[number];

export interface PlanContext {
  /** This machine as the scheduler sees it. */
  readonly node: NodeSpec;
  readonly policy: Policy;
  /** Breaks the scheduler's ties; drawn from in queue order. */
  readonly rng: Prng;
}

export interface PlanInput {
  /** The machine now, with the tenants' quotas: tasks holding GPUs as placements (those with an operation in flight at a priority nothing can preempt). */
  readonly snapshot: ClusterSnapshot;
  /** Queued tasks and suspended ones waiting to resume, in queue order. */
  readonly queue: readonly Task[];
  readonly preemption: PreemptionPolicy;
  /** Running tasks can be suspended (the daemon has the CUDA checkpoint API). */
  readonly suspendable: boolean;
  /** Tasks being suspended now, and for whom (null: asked by a person). */
  readonly suspending: readonly Pick<Task, 'id' | 'preemptedBy'>[];
}

export interface Victim {
  readonly taskId: string;
  readonly action: 'suspend' | 'kill';
}

export type PlanAction =
  | { readonly kind: 'start'; readonly task: Task; readonly placement: Placement; readonly gpus: TaskGpu[]; readonly smRanges: TaskSmRange[] | null }
  | { readonly kind: 'resume'; readonly task: Task; readonly placement: Placement; readonly gpus: TaskGpu[] }
  /** Suspend or kill `victims` to make room for `task`, which waits meanwhile (`reason`). */
  | { readonly kind: 'preempt'; readonly task: Task; readonly victims: readonly Victim[]; readonly reason: WaitReason }
  /** `message`: what to record as the task's message (for people), or undefined to leave it. */
  | { readonly kind: 'wait'; readonly task: Task; readonly reason: WaitReason; readonly message?: string };

export interface Plan {
  /** One action per task of the queue, in queue order. */
  readonly actions: readonly PlanAction[];
  /** The queued task that stopped the pass for want of room (a submission queued behind it cannot start). */
  readonly blocked: Task | null;
}

/** The next actions for the queue: see the module's rules. */
export function planQueue(ctx: PlanContext, input: PlanInput): Plan {
  const actions: PlanAction[] = [];
  let snapshot = input.snapshot;
  let stop: { at: number; head: Task; blocked: boolean } | null = null;
  for (const [i, task] of input.queue.entries()) {
    if (task.state === 'suspended') {
      const found = placeResume(ctx, snapshot, task);
      if (found.placement === null) {
        actions.push({ kind: 'wait', task, reason: smPartitionWait(found.refusal, task.request.gpus) ?? noRoom(found.refusal, 'notAsked') });
        stop = { at: i, head: task, blocked: false };
        break;
      }
      snapshot = withPlacement(snapshot, found.placement);
      actions.push({ kind: 'resume', task, placement: found.placement, gpus: taskGpus(found.placement, ctx.node) });
      continue;
    }
    const decision = schedule(snapshot, placementRequest(task), { policy: ctx.policy, rng: ctx.rng });
    const sms = smPartitionWait(decision, task.request.gpus);
    if (sms !== null) {
      // There is room, but no GPU has its SMs in a row free (or its GPUs run the other kind of
      // work): it waits for a partition to end, holding the queue like any task that does not
      // fit. Preemption is not asked: it frees compute, not SM ranges.
      actions.push({ kind: 'wait', task, reason: sms, message: `waiting for SMs: ${sms.text}` });
      stop = { at: i, head: task, blocked: true };
      break;
    }
    if (decision.status !== 'ok') {
      const quota = task.tenant !== null && input.snapshot.quotas.has(task.tenant) ? quotaHold(ctx, snapshot, task, decision) : null;
      if (quota !== null) {
        // Held back only by its own tenant's quota: it waits without holding up other tenants.
        actions.push({ kind: 'wait', task, reason: quota, message: `waiting for tenant quota: ${quota.text}` });
        continue;
      }
      actions.push(preemptFor(ctx, snapshot, task, decision, input));
      stop = { at: i, head: task, blocked: true };
      break;
    }
    snapshot = withPlacement(snapshot, decision.placement);
    actions.push({ kind: 'start', task, placement: decision.placement, gpus: taskGpus(decision.placement, ctx.node), smRanges: taskSmRanges(decision.placement, ctx.node) });
  }
  if (stop !== null) {
    const head = stop.head;
    for (const task of input.queue.slice(stop.at + 1)) actions.push({ kind: 'wait', task, reason: behind(head.id) });
  }
  return { actions, blocked: stop?.blocked === true ? stop.head : null };
}

/**
 * Its tenant's quota, if that alone holds it back. A memory quota says so in the decision (per
 * GPU); a GPU-count or compute quota refuses before any GPU is looked at, so for those the
 * scheduler is asked once more without quotas.
 */
function quotaHold(ctx: PlanContext, snapshot: ClusterSnapshot, task: Task, decision: Decision): Extract<WaitReason, { kind: 'quota' }> | null {
  const tenant = task.tenant;
  if (tenant === null) return null;
  let only = heldOnlyByQuota(decision, snapshot, task.request.isolation === 'sm-partition');
  if (only === 'unknown') only = schedule({ ...snapshot, quotas: new Map() }, placementRequest(task), { policy: ctx.policy, rng: createPrng(1) }).status === 'ok';
  return only ? quotaRefusal(decision, tenant) : null;
}

/** The head of the queue does not fit: make room by preemption if the policy and the scheduler allow, else wait. */
function preemptFor(ctx: PlanContext, snapshot: ClusterSnapshot, task: Task, decision: Decision, input: PlanInput): PlanAction {
  if (input.suspending.length > 0) {
    // One preemption at a time: while victims are being suspended, wait for them.
    const mine = input.suspending.filter((s) => s.preemptedBy === task.id);
    if (mine.length === 0) return { kind: 'wait', task, reason: noRoom(decision, 'otherUnderWay') };
    return { kind: 'wait', task, reason: preempting(mine.map((s) => ({ taskId: s.id, action: 'suspend' as const }))) };
  }
  if (input.preemption === 'off') return { kind: 'wait', task, reason: noRoom(decision, 'off') };
  const plan = planPreemption(snapshot, { ...placementRequest(task), suspendable: input.suspendable }, { policy: ctx.policy, rng: createPrng(task.seq) });
  if (!plan) return { kind: 'wait', task, reason: noRoom(decision, 'noVictims') };
  if (plan.actions.some((a) => a.action === 'evict') && input.preemption !== 'suspend-then-kill') return { kind: 'wait', task, reason: noRoom(decision, 'needsKill') };
  const victims = plan.actions.map((a): Victim => ({ taskId: a.placement.id, action: a.action === 'suspend' ? 'suspend' : 'kill' }));
  return { kind: 'preempt', task, victims, reason: preempting(victims) };
}

/**
 * Where a suspended task resumes: its own GPUs if they have room again, else other GPUs of the
 * same model (restore remaps them), else nowhere (`refusal`: the scheduler's answer for its own
 * GPUs). A partition resumes on its own SMs: the scheduler is asked for those ranges.
 */
function placeResume(ctx: PlanContext, snapshot: ClusterSnapshot, task: Task): { readonly placement: Placement } | { readonly placement: null; readonly refusal: Decision } {
  const first: { refusal: Decision | null } = { refusal: null };
  const tryRequest = (request: Task['request']): Placement | null => {
    const d = schedule(snapshot, placementRequest({ ...task, request }, task.smRanges), { policy: ctx.policy, rng: ctx.rng });
    if (d.status === 'ok') return d.placement;
    first.refusal ??= d;
    return null;
  };
  const old = task.gpus ?? [];
  let found: Placement | null;
  if (old.length === 0) found = tryRequest(task.request);
  else {
    found = tryRequest({ ...task.request, uuids: { include: old.map((g) => g.uuid), exclude: [] } });
    const models = [...new Set(old.map((g) => ctx.node.gpus.find((s) => s.uuid === g.uuid)?.model))];
    if (found === null && models.length === 1 && models[0] !== undefined) found = tryRequest({ ...task.request, models: { include: [models[0]], exclude: [] }, uuids: { include: [], exclude: [] } });
  }
  if (found !== null) return { placement: found };
  return { placement: null, refusal: first.refusal ?? { status: 'unresolvable', reason: { kind: 'noNodes' } } };
}

/** Waiting behind the task that stopped the pass. */
export function behind(taskId: string): WaitReason {
  return { kind: 'behind', taskId, text: `queued behind task ${taskId}, which does not fit yet (no task jumps the queue)` };
}

function preempting(victims: readonly Victim[]): WaitReason {
  const words = victims.map((v) => `${v.action === 'suspend' ? 'suspending' : 'killing'} ${v.taskId}`).join(', ');
  return { kind: 'preempting', victims, text: `making room by preemption: ${words}` };
}

/** Why a task waits, for every task the plan leaves waiting. */
export function waitReasons(plan: Plan): Map<string, WaitReason> {
  const reasons = new Map<string, WaitReason>();
  for (const a of plan.actions) if (a.kind === 'wait' || a.kind === 'preempt') reasons.set(a.task.id, a.reason);
  return reasons;
}
