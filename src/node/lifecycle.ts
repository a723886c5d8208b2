/**
 * The task lifecycle: performs what the queue planner decided, and watches what follows.
 * Launches tasks (under MPS for SM partitions), supervises them to their end, kills them with a
 * grace period, suspends and resumes them through the CUDA checkpoint API, re-adopts them after
 * a restart and reconciles those caught halfway through a suspension. Every state change is
 * committed (TaskEvents.commit: the row and its event in one transaction) before or as soon as
 * the process is touched, so a crash between the two leaves a state the next start can
 * reconcile. Decides nothing about the queue: when a change may let queued tasks move, it calls
 * `onChange` (a queue pass, queue.ts).
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { ErrorCodes } from '../domain/index.js';
import type { CheckpointApi, GpuPair } from '../gpu/checkpoint.js';
import { readRegion } from '../gpu/region/index.js';
import { STARTED_STATES, type Task, type TaskGpu, type TaskSmRange } from '../contract/task.js';
import { describeEnding } from './ending.js';
import type { TaskEvents } from './events.js';
import { launch, readExitStatus, taskEnvironment, taskFiles, type NativePaths } from './launcher.js';
import type { MpsControl } from './mps.js';
import { computeLimitPercent, rangesOnto } from './placement.js';
import type { PreemptionPolicy } from './planner.js';
import { isSameLiveProcess, signalGroup } from './proc.js';
import type { Sandbox } from './sandbox.js';
import type { TaskStore } from './store/tasks.js';
import { Supervisor, type DeviceUsage, type Ending } from './supervisor.js';
import { cudaStates, resumeGroup, suspendGroup } from './suspend.js';

export interface LifecycleOptions {
  readonly stateDir: string;
  readonly store: TaskStore;
  readonly events: TaskEvents;
  readonly logger: Logger;
  readonly now: () => number;
  readonly native: NativePaths;
  readonly killGraceMs: number;
  /** Tasks' users, environments, directories and cgroups. */
  readonly sandbox: Sandbox;
  readonly checkpoint: CheckpointApi | null;
  readonly checkpointProblem?: string | undefined;
  readonly preemption: PreemptionPolicy;
  readonly lockTimeoutMs: number;
  readonly mps: MpsControl | null;
  /** Something changed that may let queued tasks move (a task ended, a suspension finished). */
  readonly onChange: () => void;
}

export type SuspendResult = { ok: true } | { ok: false; code: string; message: string };

const SIGCONT = 18;
const SIGTERM = 15;
const SIGKILL = 9;

export class Lifecycle {
  private readonly store: TaskStore;
  private readonly events: TaskEvents;
  private readonly log: Logger;
  private readonly supervisor: Supervisor;
  private readonly killTimers = new Map<string, NodeJS.Timeout>();
  /** Suspensions and resumptions in flight, by task. */
  private readonly busy = new Map<string, Promise<unknown>>();
  /** Where a resuming task goes (its record keeps its old GPUs until the restore succeeded). */
  private readonly resumeTargets = new Map<string, readonly TaskGpu[]>();
  private closed = false;

  constructor(private readonly options: LifecycleOptions) {
    this.store = options.store;
    this.events = options.events;
    this.log = options.logger;
    this.supervisor = new Supervisor({ onEnd: (id, ending) => this.ended(id, ending) });
  }

  /** Re-adopts the tasks that outlived the last daemon; those whose process is gone end now. */
  adopt(): void {
    for (const task of this.store.list().filter((t) => STARTED_STATES.has(t.state))) {
      const files = taskFiles(this.options.stateDir, task.id);
      if (task.pid !== null && task.pidStartTime !== null && isSameLiveProcess(task.pid, task.pidStartTime)) {
        this.supervisor.watchAdopted(task.id, task.pid, task.pidStartTime, files.status, task.regionPath);
        this.events.commit(task.id, { adopted: true }, 'task.adopted', { pid: task.pid, state: task.state });
        this.log.info({ task: task.id, taskPid: task.pid, state: task.state }, 're-adopted task');
        if (task.state === 'suspending' || task.state === 'resuming') this.reconcile(task);
      } else {
        this.ended(task.id, { status: readExitStatus(files.status), wrapper: null, peakMemoryBytes: task.peakMemoryBytes }, true);
      }
    }
  }

  close(): void {
    this.closed = true;
    this.supervisor.close();
    for (const t of this.killTimers.values()) clearTimeout(t);
    this.killTimers.clear();
  }

  /** A suspension or resumption is in flight for the task. */
  isBusy(id: string): boolean {
    return this.busy.has(id);
  }

  /** The suspension or resumption in flight for the task, if any. */
  operation(id: string): Promise<unknown> | undefined {
    return this.busy.get(id);
  }

  /** Where a resuming task goes, while it resumes. */
  resumeTarget(id: string): readonly TaskGpu[] | undefined {
    return this.resumeTargets.get(id);
  }

  /** The GPUs a task holds in the scheduler's view: a resuming task's targets, else its record's. */
  gpusOf(task: Task): readonly TaskGpu[] {
    return this.resumeTargets.get(task.id) ?? task.gpus ?? [];
  }

  /** What the task's processes hold now (about a second old); null before its first CUDA call. */
  usage(id: string): readonly DeviceUsage[] | null {
    return this.supervisor.usage(id);
  }

  checkpointProblem(): string {
    return this.options.checkpointProblem ?? 'the CUDA checkpoint API is not available';
  }

  /** Launches a placed task and starts watching it; a task that cannot start ends as failed. */
  start(task: Task, gpus: readonly TaskGpu[], smRanges: TaskSmRange[] | null): void {
    const files = taskFiles(this.options.stateDir, task.id);
    if (!existsSync(task.cwd)) {
      this.events.commit(task.id, { state: 'failed', finishedAt: this.options.now(), message: `its working directory ${task.cwd} no longer exists` }, 'task.ended', { state: 'failed' });
      return;
    }
    const limit = computeLimitPercent(task);
    const at = this.options.now();
    let message: string | null = null;
    let mpsPipeDir: string | null = null;
    if (smRanges !== null) {
      const mps = this.options.mps?.ensure() ?? { pipeDir: null, problem: 'this daemon has no MPS control' };
      if (mps.pipeDir === null && this.options.mps?.status().mode === 'on') {
        this.events.commit(task.id, { state: 'failed', finishedAt: at, message: `not started: MPS is required (mps: on) but ${mps.problem}` }, 'task.ended', { state: 'failed' });
        return;
      }
      mpsPipeDir = mps.pipeDir;
      // Said on the task, so whoever wonders why its partition is slow sees it.
      if (mpsPipeDir === null) message = `running without MPS (${mps.problem}): SM partitions on one GPU take turns instead of running at once`;
    }
    try {
      const sandbox = this.options.sandbox.prepare(task);
      const env = { ...taskEnvironment(sandbox.baseEnv, task, gpus, limit, smRanges === null ? null : { ranges: smRanges, mpsPipeDir }), ...sandbox.wrapperEnv };
      const launched = launch(task, env, this.options.native, files.status);
      this.events.commit(task.id, { state: 'running', gpus, smRanges, computeLimitPercent: limit, pid: launched.pid, pidStartTime: launched.startTime, startedAt: at, message }, 'task.started', {
        pid: launched.pid,
        gpus: gpus.map((g) => g.uuid),
        ...(smRanges !== null ? { smRanges: smRanges.map((r) => ({ uuid: r.uuid, offset: r.offset, count: r.count })), mps: mpsPipeDir !== null } : {}),
      });
      this.supervisor.watchChild(task.id, launched.child, files.status, task.regionPath);
      this.log.info({ task: task.id, taskPid: launched.pid, gpus: gpus.map((g) => g.index), ...(smRanges !== null ? { smRanges } : {}) }, 'task started');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.events.commit(task.id, { state: 'failed', finishedAt: at, message }, 'task.ended', { state: 'failed' });
      this.log.error({ task: task.id, err }, 'task could not be started');
    }
  }

  /**
   * Signals a started task's process group (continuing it if suspended, so the signal arrives),
   * then SIGKILL after `graceMs` if it is still there. The kill request is the caller's to commit.
   */
  signal(task: Task, signal: number, graceMs: number): void {
    if (task.pid === null || task.pidStartTime === null || !isSameLiveProcess(task.pid, task.pidStartTime)) return;
    signalGroup(task.pid, signal);
    this.options.sandbox.signal(task, signal);
    // A suspended group is stopped: it only receives the signal once continued. It dies
    // without its GPU state ever being restored (the driver frees the host copy with it).
    if (task.state !== 'running') signalGroup(task.pid, SIGCONT);
    this.scheduleHardKill(task, graceMs);
  }

  /** Starts a suspension; the promise says how it went (the task is back to running if it failed). */
  suspend(task: Task, why: { preemptedBy: string | null; autoResume: boolean; by: string }): Promise<SuspendResult> {
    const api = this.options.checkpoint;
    const pid = task.pid;
    if (!api || pid === null) return Promise.resolve({ ok: false, code: ErrorCodes.checkpointUnavailable, message: this.checkpointProblem() });
    this.events.commit(task.id, { state: 'suspending', preemptedBy: why.preemptedBy, autoResume: why.autoResume }, 'task.suspending', { by: why.by, preemptedBy: why.preemptedBy });
    const bytes = regionBytes(task.regionPath);
    const started = performance.now();
    const op = (async (): Promise<SuspendResult> => {
      const r = await suspendGroup(api, pid, this.options.lockTimeoutMs);
      this.busy.delete(task.id);
      if (this.closed || this.store.get(task.id).state !== 'suspending') return r.ok ? { ok: true } : { ok: false, code: r.error.code, message: r.error.message };
      const ms = Math.round(performance.now() - started);
      if (r.ok) {
        this.events.commit(task.id, { state: 'suspended', suspendedAt: this.options.now(), suspensions: task.suspensions + 1, message: null }, 'task.suspended', { ms, gpuBytes: bytes, processes: r.pids.length, preemptedBy: why.preemptedBy });
        this.log.info({ task: task.id, ms, gpuBytes: bytes, preemptedBy: why.preemptedBy }, 'task suspended');
      } else {
        this.events.commit(task.id, { state: 'running', preemptedBy: null, autoResume: false }, 'task.suspend-failed', { code: r.error.code, cudaResult: r.error.cudaResult, message: r.error.message });
        this.log.warn({ task: task.id, err: r.error }, 'suspend failed; the task goes on running');
        if (why.preemptedBy !== null && this.options.preemption === 'suspend-then-kill') this.evict(this.store.get(task.id), why.preemptedBy, `could not be suspended (${r.error.message})`);
      }
      this.options.onChange();
      return r.ok ? { ok: true } : { ok: false, code: r.error.code, message: r.error.message };
    })();
    this.busy.set(task.id, op);
    return op;
  }

  /** Starts resuming a suspended task onto `gpus` (its own, or others of the same model). */
  resume(task: Task, gpus: readonly TaskGpu[]): void {
    const api = this.options.checkpoint;
    const pid = task.pid;
    if (!api || pid === null) return;
    const old = task.gpus ?? [];
    const moved = old.length === gpus.length && old.some((g, i) => g.uuid !== gpus[i]?.uuid);
    // The driver maps every checkpointed GPU to its new one; CUDA_VISIBLE_DEVICES in the task's
    // environment keeps naming the old UUIDs, and its device ordinals keep their meaning.
    const pairs: GpuPair[] = moved ? old.map((g, i) => ({ from: g.uuid, to: gpus[i]?.uuid ?? g.uuid })) : [];
    this.resumeTargets.set(task.id, gpus);
    this.events.commit(task.id, { state: 'resuming' }, 'task.resuming', { gpus: gpus.map((g) => g.uuid), moved });
    const bytes = regionBytes(task.regionPath);
    const started = performance.now();
    const op = (async () => {
      const r = await resumeGroup(api, pid, pairs);
      this.busy.delete(task.id);
      this.resumeTargets.delete(task.id);
      if (this.closed || this.store.get(task.id).state !== 'resuming') return;
      const ms = Math.round(performance.now() - started);
      if (r.ok) {
        this.events.commit(task.id, { state: 'running', gpus, smRanges: rangesOnto(task.smRanges, gpus), preemptedBy: null, autoResume: false, message: null }, 'task.resumed', { ms, gpuBytes: bytes, gpus: gpus.map((g) => g.uuid), moved, processes: r.pids.length });
        this.log.info({ task: task.id, ms, moved }, 'task resumed');
      } else {
        this.events.commit(task.id, { state: 'suspended', message: `resume failed: ${r.error.message}` }, 'task.resume-failed', { code: r.error.code, cudaResult: r.error.cudaResult, message: r.error.message });
        this.log.warn({ task: task.id, err: r.error }, 'resume failed; the task stays suspended');
        return;
      }
      this.options.onChange();
    })();
    this.busy.set(task.id, op);
  }

  /** Kills a preemption victim that cannot be suspended (policy suspend-then-kill). */
  evict(victim: Task, by: string, why: string): void {
    if (victim.state !== 'running' || victim.pid === null || victim.pidStartTime === null) return;
    this.events.commit(victim.id, { killRequested: true, message: `preempted by task ${by}: killed because it ${why}` }, 'task.evicted', { preemptedBy: by });
    if (isSameLiveProcess(victim.pid, victim.pidStartTime)) {
      signalGroup(victim.pid, SIGTERM);
      this.scheduleHardKill(victim, this.options.killGraceMs);
    }
  }

  /**
   * After a restart, a task caught halfway through a suspension or resumption: a resumption
   * whose CUDA processes all run is done; anything else is suspended (finishing the
   * suspension), and resumes like any other suspended task. A suspension is finished even when
   * every process still reads as running: the dead daemon's lock may still be under way in the
   * driver, and a task left running beside it would lock up later with nobody to unlock it.
   */
  private reconcile(task: Task): void {
    const api = this.options.checkpoint;
    const pid = task.pid;
    if (pid === null) return;
    const found = api ? cudaStates(api, pid) : null;
    const allRunning = found !== null && found.ok && [...found.states.values()].every((s) => s === 'running');
    if (!api || (allRunning && task.state === 'resuming')) {
      signalGroup(pid, SIGCONT);
      this.events.commit(task.id, { state: 'running', preemptedBy: null, autoResume: false }, 'task.reconciled', { state: 'running' });
      return;
    }
    const op = (async () => {
      const r = await suspendGroup(api, pid, this.options.lockTimeoutMs);
      this.busy.delete(task.id);
      if (this.closed || !STARTED_STATES.has(this.store.get(task.id).state)) return;
      if (r.ok) this.events.commit(task.id, { state: 'suspended', autoResume: true, suspendedAt: this.options.now() }, 'task.reconciled', { state: 'suspended' });
      else this.events.commit(task.id, { state: 'running', preemptedBy: null, autoResume: false, message: `left running after a restart: ${r.error.message}` }, 'task.reconciled', { state: 'running', message: r.error.message });
      this.options.onChange();
    })();
    this.busy.set(task.id, op);
  }

  private scheduleHardKill(task: Task, graceMs: number): void {
    if (this.killTimers.has(task.id) || task.pid === null || task.pidStartTime === null) return;
    const { pid, pidStartTime } = task;
    const timer = setTimeout(() => {
      this.killTimers.delete(task.id);
      if (isSameLiveProcess(pid, pidStartTime)) {
        this.log.warn({ task: task.id, taskPid: pid }, 'task outlived its kill grace period; sending SIGKILL');
        signalGroup(pid, SIGKILL);
      }
    }, graceMs);
    timer.unref();
    this.killTimers.set(task.id, timer);
  }

  private ended(id: string, ending: Ending, atStart = false): void {
    const timer = this.killTimers.get(id);
    if (timer) clearTimeout(timer);
    this.killTimers.delete(id);
    const task = this.store.get(id);
    if (!STARTED_STATES.has(task.state)) return;
    this.options.sandbox.release(task);
    this.resumeTargets.delete(id);
    const outcome = describeEnding(task, ending, atStart);
    // A reason recorded before the end (an eviction by preemption) outlives a plain signal ending.
    this.events.commit(id, { ...outcome, message: outcome.message ?? task.message, finishedAt: this.options.now(), peakMemoryBytes: ending.peakMemoryBytes ?? task.peakMemoryBytes }, 'task.ended', {
      state: outcome.state,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
    });
    this.log.info({ task: id, ...outcome }, 'task ended');
    if (!atStart) this.options.onChange();
  }
}

/** GPU memory the task's processes hold now, as libgpushare counts it; null without a region. */
function regionBytes(path: string): number | null {
  try {
    let bytes = 0;
    for (const slot of readRegion(path).slots) for (const d of slot.devices) bytes += d.limitedBytes;
    return bytes;
  } catch {
    return null;
  }
}
