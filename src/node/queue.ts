/**
 * The queue's passes: decide, then commit, then perform. Each pass reads the machine and the
 * queue, asks the planner (planner.ts, pure) what to do, keeps why each task waits, records
 * what it decided (messages, preemption events) and hands starts, resumes and preemptions to the
 * lifecycle layer. A pass runs whenever something may have made room: a submission, a task's
 * end, a kill, a quota change, a finished suspension or resumption.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { buildSnapshot, createPrng, type ClusterSnapshot, type NodeSpec, type Placement, type Policy, type TenantQuota, type TenantUsage } from '../scheduler/index.js';
import { HOLDING_STATES, type Task, type WaitReason } from '../contract/task.js';
import type { TaskEvents } from './events.js';
import type { Lifecycle } from './lifecycle.js';
import type { GpuInventory } from './inventory.js';
import { currentSnapshot, taskPlacement } from './placement.js';
import { planMove, type MovePlan } from './move-plan.js';
import { behind, planQueue, waitReasons, type Plan, type PlanAction, type PreemptionPolicy } from './planner.js';
import type { TaskStore } from './store/tasks.js';
import { queueOrder } from './task.js';

export interface TaskQueueOptions {
  readonly store: TaskStore;
  /** The GPUs and this machine as the scheduler sees it, read at most every 250 ms (inventory.ts). */
  readonly inventory: GpuInventory;
  readonly lifecycle: Lifecycle;
  readonly events: TaskEvents;
  readonly logger: Logger;
  readonly policy: Policy;
  /** The tenants' quotas now, in the scheduler's form. */
  readonly quotas: () => ReadonlyMap<string, TenantQuota>;
  readonly preemption: PreemptionPolicy;
  /** Running tasks can be suspended (the CUDA checkpoint API is there). */
  readonly suspendable: boolean;
  /** Hears of each pass's decisions (the metrics exporter); absent: nobody listens. */
  readonly observer?: QueueObserver | undefined;
}

/** What a queue pass decided: one decision per task of the queue, by kind, and the seconds deciding took. */
export interface QueueObserver {
  queuePass(decisions: Readonly<Record<PlanAction['kind'], number>>, seconds: number): void;
}

/** How long a task whose suspension failed counts as not suspendable for preemption. */
const SUSPEND_RETRY_MS = 30_000;

export class TaskQueue {
  private readonly store: TaskStore;
  private readonly lifecycle: Lifecycle;
  private readonly log: Logger;
  private readonly rng = createPrng(0x5eed);
  private nodeSpec: NodeSpec;
  private closed = false;
  /**
   * The queued task the last pass stopped at for want of room, if any. Until something ends or
   * changes, a submission queued behind it cannot start, so `submitted` skips the pass (which
   * reads the whole queue): a deep queue does not make every submission slower.
   */
  private blockedAt: Pick<Task, 'id' | 'priority' | 'seq'> | null = null;
  /**
   * Why each waiting task waits, as the last pass decided. Kept in memory, not stored: it is
   * recomputed by every pass (and the first pass after a restart), describes the machine now
   * rather than the task's history, and storing it would add a write per queued task per pass.
   */
  private waiting = new Map<string, WaitReason>();
  /**
   * Tasks whose suspension for a preemption just failed, and when (performance.now() ms): they
   * count as not suspendable for SUSPEND_RETRY_MS, so the next pass does not ask again at once.
   * Without it a victim that cannot be suspended (no checkpoint API and no slice swap for it, or
   * its memory shared with another process) was asked again on every pass, many times a second.
   */
  private suspendFailed = new Map<string, number>();
  /** Counts changes to `waiting` (see Daemon.liveVersion). */
  private waitingChanges = 0;
  /** A pass is scheduled for the submissions of this turn of the event loop (see submitted). */
  private passDue = false;

  constructor(private readonly options: TaskQueueOptions) {
    this.store = options.store;
    this.lifecycle = options.lifecycle;
    this.log = options.logger;
    this.nodeSpec = options.inventory.node();
  }

  close(): void {
    this.closed = true;
  }

  /** Goes up whenever why tasks wait may have changed. */
  waitingVersion(): number {
    return this.waitingChanges;
  }

  /** Why the task waits, if it is waiting (queued, or suspended waiting to resume). */
  waitingOf(task: Task): WaitReason | undefined {
    if (task.state !== 'queued' && task.state !== 'suspended') return undefined;
    return this.waiting.get(task.id);
  }

  /**
   * A task just queued (and committed): a pass soon, unless it is queued behind the blocked head
   * (then it waits behind it, plainly). The pass is not run here but once per turn of the event
   * loop for every submission that arrived in it: the submitter is answered as soon as its task
   * is stored, and starting it happens off its response path.
   */
  submitted(task: Task): void {
    const head = this.blockedAt;
    if (head !== null && queueOrder(task, head) > 0) {
      this.waiting.set(task.id, behind(head.id));
      this.waitingChanges += 1;
      return;
    }
    this.passSoon();
  }

  /**
   * One pass after this turn of the event loop, however many ask for it during the turn (many
   * tasks end in one turn when many short ones run: one pass serves them all).
   */
  passSoon(): void {
    if (this.passDue) return;
    this.passDue = true;
    setImmediate(() => {
      this.passDue = false;
      this.pump();
    });
  }

  /** What each tenant's running tasks hold, as the scheduler counts it. */
  usage(): ReadonlyMap<string, TenantUsage> {
    return currentSnapshot(this.nodeSpec, this.store.list().filter((t) => HOLDING_STATES.has(t.state))).usage;
  }

  /** One pass over the queue: decide (planner.ts), then commit and perform each action. */
  pump(): void {
    this.blockedAt = null;
    if (this.closed) return;
    const all = this.store.list();
    // Suspended tasks waiting for room take their turn in the queue, like queued ones.
    const queue = all.filter((t) => t.state === 'queued' || (t.state === 'suspended' && t.autoResume && !this.lifecycle.isBusy(t.id))).sort(queueOrder);
    if (queue.length === 0) {
      if (this.waiting.size > 0) this.waitingChanges += 1;
      this.waiting = new Map();
      return;
    }
    this.nodeSpec = this.options.inventory.node();
    const started = performance.now();
    const plan = planQueue(
      { node: this.nodeSpec, policy: this.options.policy, rng: this.rng },
      {
        snapshot: this.snapshot(all, this.options.quotas()),
        queue,
        preemption: this.options.preemption,
        suspendable: this.options.suspendable,
        suspending: all.filter((t) => t.state === 'suspending'),
      },
    );
    // What this pass does now (a burst's starts are paced); the observer counts that, not again what the next pass redoes.
    const now = paced(plan, () => this.passSoon());
    if (this.options.observer !== undefined) observePass(this.options.observer, now, (performance.now() - started) / 1000);
    this.waiting = keepSame(this.waiting, waitReasons(plan));
    this.waitingChanges += 1;
    this.blockedAt = plan.blocked;
    this.perform(now);
  }

  /**
   * Commits and performs a plan's actions (each commit is the lifecycle's or here). Its starts
   * go first, all in one commit (each spawns once that is committed): they are independent of
   * one another and of the pass's other actions, whose order is kept.
   */
  private perform(plan: Plan): void {
    this.store.transaction(() => {
      for (const action of plan.actions) {
        if (action.kind !== 'start') continue;
        // Each start its own savepoint: one that throws undoes its own writes, not the others'.
        try {
          this.store.transaction(() => this.lifecycle.start(action.task, action.gpus, action.smRanges));
        } catch (err) {
          this.log.error({ task: action.task.id, err }, 'could not start the task; it stays queued');
        }
      }
    });
    for (const action of plan.actions) {
      switch (action.kind) {
        case 'start':
          break;
        case 'resume':
          this.lifecycle.resume(action.task, action.gpus);
          break;
        case 'wait':
          if (action.message !== undefined && action.task.message !== action.message) this.store.update(action.task.id, { message: action.message });
          if (action.reason.kind === 'noRoom' && action.reason.preemption === 'needsKill') {
            this.log.info({ task: action.task.id, reason: this.options.suspendable ? 'victims cannot be suspended' : this.lifecycle.checkpointProblem() }, 'preemption would need kills; policy "suspend" never kills');
          }
          break;
        case 'preempt': {
          const task = action.task;
          const victims = action.victims.map((v) => ({ task: this.store.get(v.taskId), action: v.action === 'suspend' ? ('suspend' as const) : ('evict' as const) }));
          this.options.events.record('task.preempting', task.id, { victims: victims.map((v) => ({ id: v.task.id, action: v.action })) });
          this.log.info({ task: task.id, victims: victims.map((v) => `${v.task.id}:${v.action}`) }, 'preempting lower-priority tasks');
          for (const v of victims) {
            if (v.action === 'suspend') {
              void this.lifecycle.suspend(v.task, { preemptedBy: task.id, autoResume: true, by: `preemption:${task.id}` }).then((r) => {
                if (!r.ok) this.suspendFailed.set(v.task.id, performance.now());
              });
            }
            else this.lifecycle.evict(v.task, task.id, 'cannot be suspended');
          }
          break;
        }
      }
    }
  }

  /** Where `task` would move to `targets` (GPU indices) now, the engine deciding on the machine as it is (move-plan.ts). */
  planMove(task: Task, targets: readonly number[]): MovePlan {
    this.nodeSpec = this.options.inventory.node();
    return planMove({ node: this.nodeSpec, policy: this.options.policy, rng: this.rng }, this.snapshot(this.store.list(), this.options.quotas()), task, targets);
  }

  /**
   * The machine as the scheduler sees it: tasks that hold GPUs (running, suspending, resuming
   * onto their targets). Suspended tasks hold nothing. Placements with an operation in flight are
   * out of the planner's reach (priority beyond any task's).
   */
  private snapshot(all: readonly Task[], quotas: ReadonlyMap<string, TenantQuota>): ClusterSnapshot {
    const placements: Placement[] = [];
    const now = performance.now();
    for (const [id, at] of this.suspendFailed) if (now - at >= SUSPEND_RETRY_MS) this.suspendFailed.delete(id);
    for (const t of all) {
      if (!HOLDING_STATES.has(t.state)) continue;
      const target = this.lifecycle.resumeTarget(t.id);
      const p = taskPlacement(target ? { ...t, gpus: target } : t, this.nodeSpec);
      if (!p) continue;
      const locked = this.lifecycle.isBusy(t.id) || t.state !== 'running' || t.killRequested;
      placements.push({ ...p, suspendable: this.options.suspendable && !this.suspendFailed.has(t.id), priority: locked ? Number.MAX_SAFE_INTEGER : p.priority });
    }
    return buildSnapshot([this.nodeSpec], placements, quotas);
  }
}

/**
 * The most starts one pass performs. Each start costs the event loop about 0.4 ms (its
 * `starting` commit's share, the spawn request, the task's files), so a pass that started a burst
 * of 500 queued tasks in one go held every submission's answer for 200 ms. Past this many, the
 * pass performs only its first starts (in queue order) and nothing else of its plan, and asks
 * for another pass: it runs on the next turn of the event loop, after the requests that arrived
 * meanwhile have been read and answered, and plans again from what is stored then (starts left
 * out are still `queued`: nothing was decided for them that could go stale).
 */
export const MAX_STARTS_PER_PASS = 32;

/** The plan to perform now: all of it, or (more starts than MAX_STARTS_PER_PASS) its first starts only, `again` asked. */
export function paced(plan: Plan, again: () => void): Plan {
  let starts = 0;
  for (const a of plan.actions) if (a.kind === 'start') starts += 1;
  if (starts <= MAX_STARTS_PER_PASS) return plan;
  again();
  const first: PlanAction[] = [];
  for (const a of plan.actions) {
    if (a.kind !== 'start') continue;
    first.push(a);
    if (first.length === MAX_STARTS_PER_PASS) break;
  }
  return { ...plan, actions: first };
}

/**
 * The new reasons, with each one that reads the same as before kept as the same object: a pass
 * re-derives every waiting task's reason, and a deep queue mostly waits for the same reasons,
 * so what is derived from a reason by identity (the API's JSON of each listed task) stays valid.
 */
function keepSame(before: ReadonlyMap<string, WaitReason>, after: Map<string, WaitReason>): Map<string, WaitReason> {
  for (const [id, reason] of after) {
    const old = before.get(id);
    if (old !== undefined && old !== reason && isDeepStrictEqual(old, reason)) after.set(id, old);
  }
  return after;
}

function observePass(observer: QueueObserver, plan: Plan, seconds: number): void {
  const decisions = { start: 0, resume: 0, wait: 0, preempt: 0 };
  for (const a of plan.actions) decisions[a.kind] += 1;
  observer.queuePass(decisions, seconds);
}
