/**
 * A task as the daemon records it and the API returns it: its states and its record. Part of the
 * API contract (server, CLI and every later front door import it from here).
 */
import type { SliceRequest, SliceRequestInput } from '../domain/index.js';

/**
 * Where a task is in its life. `exited`: it ran and ended by itself (any exit code); `killed`:
 * it ended after a kill (or was cancelled while queued); `failed`: it could not be started;
 * `lost`: its process is gone and how it ended is unknown (see supervisor.ts). `starting`: placed
 * and recorded as about to start, its process not yet confirmed (it holds its GPUs like
 * `running`); seen only for the moment of a launch, or after a daemon crash until the next
 * daemon reconciles it (lifecycle.ts: started once, never twice).
 * Suspension (suspend.ts): `suspending` (GPU state going to host memory; still holds its GPUs),
 * `suspended` (its GPU memory is on the host and its processes are stopped: it holds no GPU in
 * the scheduler's view, but keeps its reservation record in `gpus`), `resuming` (placed again,
 * GPU state coming back).
 */
export const TASK_STATES = ['queued', 'starting', 'running', 'exited', 'killed', 'failed', 'lost', 'suspending', 'suspended', 'resuming'] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const LIVE_STATES: ReadonlySet<TaskState> = new Set(['queued', 'starting', 'running', 'suspending', 'suspended', 'resuming']);
/** States whose process exists (started, not ended), or may (`starting`). */
export const STARTED_STATES: ReadonlySet<TaskState> = new Set(['starting', 'running', 'suspending', 'suspended', 'resuming']);
/** States that hold GPU memory and compute in the scheduler's view. */
export const HOLDING_STATES: ReadonlySet<TaskState> = new Set(['starting', 'running', 'suspending', 'resuming']);

/** What a task holds on one GPU once placed. */
export interface TaskGpu {
  readonly index: number;
  readonly uuid: string;
  readonly memoryBytes: number;
  /** Compute reserved, in milli-GPU (1000 = the whole GPU); 0 = best effort. */
  readonly computeMilli: number;
}

/**
 * An sm-partition task's SMs on one GPU: `count` SMs from `offset` in the driver's split order
 * (GPUSHARE_SM_OFFSET), disjoint from every other partition held on that GPU.
 */
export interface TaskSmRange {
  readonly uuid: string;
  readonly offset: number;
  readonly count: number;
}

/** A task as the daemon records it and the API returns it; times are UTC epoch milliseconds. */
export interface Task {
  readonly id: string;
  /** Arrival order: the queue's tie-breaker after priority. */
  readonly seq: number;
  readonly state: TaskState;
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly request: SliceRequest;
  readonly priority: number;
  readonly tenant: string | null;
  readonly gpus: readonly TaskGpu[] | null;
  /** Compute limit passed to the task, percent of each GPU; null = none. */
  readonly computeLimitPercent: number | null;
  /** Isolation sm-partition: its SMs on each of its GPUs, in `gpus` order; null otherwise. */
  readonly smRanges: readonly TaskSmRange[] | null;
  readonly pid: number | null;
  /** The pid's start time in clock ticks since boot (/proc/PID/stat field 22): tells a reused pid apart. */
  readonly pidStartTime: number | null;
  readonly submittedAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly exitCode: number | null;
  /** The signal that ended it (`SIGTERM`), if one did. */
  readonly signal: string | null;
  /** Why it ended the way it did, for people (`cannot run foo: No such file or directory`). */
  readonly message: string | null;
  /** Most GPU memory it held at once, summed over its GPUs, as libgpushare reported it. */
  readonly peakMemoryBytes: number | null;
  /** A kill was asked for; the task ends as `killed`. */
  readonly killRequested: boolean;
  /** Re-adopted by a restarted daemon at least once. */
  readonly adopted: boolean;
  /** When it was last suspended (null: never, or see `state`). */
  readonly suspendedAt: number | null;
  /** How many times it was suspended. */
  readonly suspensions: number;
  /** The task whose start preempted it, while it is suspended for that reason. */
  readonly preemptedBy: string | null;
  /** Resume it by itself as soon as there is room (preempted, or a resume asked while there was none). */
  readonly autoResume: boolean;
  /**
   * Why a queued task (or a suspended one waiting to resume) has not started, as of the queue's
   * last pass; null when it is not waiting, or before its first pass. Recomputed by every pass,
   * never stored: it describes the machine now, not the task's history.
   */
  readonly waiting: WaitReason | null;
  readonly stdoutPath: string;
  readonly stderrPath: string;
  readonly regionPath: string;
}

/** One GPU that refused a task: the scheduler filter's reason kind, and the same in words. */
export interface GpuRefusal {
  readonly gpu: number;
  /** The scheduler's reason kind: `insufficientGpuMemory`, `insufficientCompute`, `quotaMemory`, `heldExclusively`, `notIdleForExclusive`, `modelNotSelected`, ... */
  readonly reason: string;
  readonly text: string;
}

/** What became of preemption for a task that does not fit: not allowed, nothing to take, it would have to kill (policy suspend), or another is under way. */
export const PREEMPTION_OUTCOMES = ['off', 'noVictims', 'needsKill', 'otherUnderWay', 'notAsked'] as const;
export type PreemptionOutcome = (typeof PREEMPTION_OUTCOMES)[number];

/**
 * Why a task waits, as data (`text` is the same in words). `noRoom`: no GPU set can take it
 * now (per GPU, the filter that refused it). `quota`: only its own tenant's quota holds it back
 * (it does not hold up other tenants' tasks). `behind`: it would fit, but a task ahead of it
 * does not, and nothing jumps the queue (no backfill). `preempting`: lower-priority tasks are
 * being suspended or killed to make room for it. A task id of another tenant's task is null
 * when a `user` token asks (api/authorize.ts), as on its GPU slices. `smPartition`: there is room, but no GPU can
 * take its SM partition now (per GPU, why), or the SMs a suspended partition held are taken.
 */
export type WaitReason =
  | { readonly kind: 'noRoom'; readonly gpus: readonly GpuRefusal[]; readonly preemption: PreemptionOutcome; readonly text: string }
  | { readonly kind: 'quota'; readonly tenant: string; readonly resource: 'gpus' | 'memoryBytes' | 'computeMilli'; readonly requested: number; readonly remaining: number; readonly text: string }
  | { readonly kind: 'behind'; readonly taskId: string | null; readonly text: string }
  | { readonly kind: 'preempting'; readonly victims: readonly { readonly taskId: string | null; readonly action: 'suspend' | 'kill' }[]; readonly text: string }
  | { readonly kind: 'smPartition'; readonly gpus: readonly GpuRefusal[]; readonly text: string };

/** A submission as the daemon takes it: the slice in the CLI's forms (`8Gi`, `30`), and what to run. */
export interface SubmitInput extends SliceRequestInput {
  readonly command: readonly string[];
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly cwd?: string | undefined;
  readonly tenant?: string | undefined;
}
