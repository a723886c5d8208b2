/**
 * The task lifecycle: performs what the queue planner decided, and watches what follows.
 * Launches tasks (under MPS for SM partitions), supervises them to their end, kills them with a
 * grace period, suspends and resumes them through the CUDA checkpoint API, re-adopts them after
 * a restart and reconciles those caught halfway through a start, a kill, a suspension or a
 * resumption. Every state change is committed (TaskEvents.commit: the row and its event in one
 * transaction) before or as soon as the process is touched, so a crash between the two leaves a
 * state the next start can reconcile:
 * - a start commits `starting` before the wrapper exists; the wrapper claims the launch before
 *   it runs anything (native/exec/claim.h), so the next daemon adopts the claimant, ends the
 *   task from its status file, or (no claim) starts it: the command runs once, never twice;
 * - a kill stores its signal and its SIGKILL deadline before the first signal; the next daemon
 *   sends the signal again and escalates at the same deadline (at once when it has passed);
 * - a resumption stores where it restores to, so a restore that finished is recorded there.
 * Fault points (faults.ts) sit between the steps; test/daemon/crash.test.ts crashes each.
 * Decides nothing about the queue: when a change may let queued tasks move, it calls
 * `onChange` (a queue pass, queue.ts).
 *
 * Over 400 lines on purpose: each operation and its restart reconciliation share the in-memory
 * state (kill timers, operations in flight, resume targets, the supervisor), and keeping an
 * operation's steps beside the code that finishes them after a crash is what lets a reader check
 * every crash point against its recovery.
 */
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { ErrorCodes } from '../domain/index.js';
import { CHECKPOINT_ERROR_CODES, type CheckpointApi, type GpuPair } from '../gpu/checkpoint.js';
import { readRegion } from '../gpu/region/index.js';
import { STARTED_STATES, type Task, type TaskGpu, type TaskSmRange } from '../contract/task.js';
import { describeEnding } from './ending.js';
import type { TaskEvents } from './events.js';
import { faultPoint } from './faults.js';
import { EXIT_CLAIM_TAKEN, launch, readClaim, readExitStatus, taskEnvironment, taskFiles, type Claim, type Launched, type NativePaths } from './launcher.js';
import type { MpsControl } from './mps.js';
import { computeLimitPercent, rangesOnto } from './placement.js';
import type { PreemptionPolicy } from './planner.js';
import { isSameLiveProcess, signalGroup, signalName, signalNumber } from './proc.js';
import type { Sandbox } from './sandbox.js';
import { grantVariable } from './sandbox-plan.js';
import { SpawnError, Spawner, SpawnerLostError } from './spawner.js';
import type { TaskStore } from './store/tasks.js';
import { Supervisor, type DeviceUsage, type Ending } from './supervisor.js';
import { cudaStates, resumeGroup, suspendGroup, type GroupResult } from './suspend.js';
import { moveSwapped, type MoveResult } from './move.js';
import { SwapSessions, swapDevices, swapDirFor, type SwapResult } from './swap.js';
import type { OvercommitConfig } from './overcommit-config.js';
import type { ResidencyGpu } from './residency.js';
import { ResidencyShell } from './residency-shell.js';
import type { TaskCpuGroup } from './task-cpu.js';

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
  /** Slice swap (swap.ts): tasks get GPUSHARE_SWAP, and suspension swaps first, the checkpoint API as the fallback. */
  readonly swap?: boolean;
  /** Memory overcommit (residency-shell.ts) on these GPUs, with their cards' memory; absent: none. */
  readonly overcommit?: { readonly config: OvercommitConfig; readonly gpus: () => readonly ResidencyGpu[] } | undefined;
  readonly preemption: PreemptionPolicy;
  readonly lockTimeoutMs: number;
  readonly mps: MpsControl | null;
  /** Something changed that may let queued tasks move (a task ended, a suspension finished). */
  readonly onChange: () => void;
  /** The low-weight CPU group the spawner, and so every start, runs in (task-cpu.ts); absent: the daemon's. */
  readonly taskCpu?: TaskCpuGroup | null | undefined;
}

/** Where a started task was placed, and its files. */
interface Placed {
  readonly gpus: readonly TaskGpu[];
  readonly smRanges: TaskSmRange[] | null;
  readonly mpsPipeDir: string | null;
  readonly files: ReturnType<typeof taskFiles>;
}

export type SuspendResult = { ok: true } | { ok: false; code: string; message: string };

/** The library waits this much past the daemon's bound for room before it answers out of memory itself. */
const ROOM_WAIT_SLACK_MS = 5000;
/** How long after a lost spawner its unanswered starts are asked through their claims. */
const RECONCILE_DELAY_MS = 200;

const SIGCONT = 18;
const SIGTERM = 15;
const SIGKILL = 9;

export class Lifecycle {
  private readonly store: TaskStore;
  private readonly events: TaskEvents;
  private readonly log: Logger;
  private readonly supervisor: Supervisor;
  private readonly spawner: Spawner;
  private readonly killTimers = new Map<string, NodeJS.Timeout>();
  /** Started tasks the spawner answered for, to be recorded `running` in one commit (recordLaunched). */
  private readonly launchedBatch: { id: string; launched: Launched; placed: Placed }[] = [];
  /** Starts whose outcome the spawner could not tell, waiting to ask their claims (RECONCILE_DELAY_MS). */
  private readonly reconcileTimers = new Set<NodeJS.Timeout>();
  /** Tasks this daemon sent the escalation's SIGKILL to (see `ended`). */
  private readonly escalated = new Set<string>();
  /** Suspensions and resumptions in flight, by task. */
  private readonly busy = new Map<string, Promise<unknown>>();
  /** Where a resuming task goes (its record keeps its old GPUs until the restore succeeded). */
  private readonly resumeTargets = new Map<string, readonly TaskGpu[]>();
  /** Tasks swapped out by this daemon, with their control connections (swap.ts). */
  private readonly swaps = new SwapSessions();
  /** Memory overcommit's swaps of running tasks (null: no GPU is overcommitted). */
  private readonly residency: ResidencyShell | null;
  private closed = false;

  constructor(private readonly options: LifecycleOptions) {
    this.store = options.store;
    this.events = options.events;
    this.log = options.logger;
    this.supervisor = new Supervisor({ onEnd: (id, ending) => this.ended(id, ending) });
    this.spawner = new Spawner(options.native.exec, {
      // The ends the spawner reported in one turn are recorded in one commit.
      batch: (record) => this.store.transaction(record),
      onExit: (pid, startTime, exit) => {
        try {
          this.supervisor.exited(pid, startTime, exit);
        } catch (err) {
          this.log.error({ taskPid: pid, err }, "could not record a task's end");
        }
      },
      onLost: (why) => {
        this.log.warn({ why }, 'the spawner died; its tasks are watched by pid from now on, and the next start runs a new one');
        this.supervisor.spawnerLost();
      },
      ...(options.taskCpu
        ? {
            onStart: (pid: number) => options.taskCpu?.place(pid),
            onPlaceFailed: (err: unknown) => this.log.warn({ err }, "the spawner could not be moved into the tasks' CPU group; its starts run at the daemon's CPU weight"),
          }
        : {}),
    });
    const oc = options.overcommit;
    this.residency = oc === undefined ? null : new ResidencyShell({
      settings: oc.config.residency,
      tickMs: oc.config.tickMs,
      gpus: oc.gpus,
      running: () => this.store.list().filter((t) => t.state === 'running'),
      usage: (id) => this.supervisor.usage(id),
      sampleNow: () => this.supervisor.sampleNow(),
      lifecycleBusy: (id) => this.busy.has(id),
      swapOn: (task) => this.swapOn(task, task.gpus ?? []),
      swaps: this.swaps,
      events: this.events,
      log: this.log,
      now: options.now,
    });
    options.sandbox.useStarter(async (argv, user) => {
      await this.spawner.run({ argv, env: {}, cwd: '/', stdout: '', stderr: '', user });
    });
  }

  /**
   * Re-adopts the tasks that outlived the last daemon; those whose process is gone end now. A
   * task caught starting is adopted through its launch claim, or started if nobody claimed it;
   * a kill under way is carried on (its signal again, its escalation at the same deadline).
   */
  adopt(): void {
    for (const task of this.store.list().filter((t) => STARTED_STATES.has(t.state))) {
      const files = taskFiles(this.options.stateDir, task.id);
      if (task.state === 'starting') {
        this.reconcileStart(task, files);
        continue;
      }
      const live = this.liveProcess(task, files.claim);
      if (live !== null) {
        this.supervisor.watchAdopted(task.id, live.pid, live.startTime, files.status, task.regionPath);
        this.events.commit(task.id, { adopted: true, pid: live.pid, pidStartTime: live.startTime }, 'task.adopted', { pid: live.pid, state: task.state });
        this.log.info({ task: task.id, taskPid: live.pid, state: task.state }, 're-adopted task');
        const adopted = this.store.get(task.id);
        if (task.state === 'resuming') this.resumeTargets.set(task.id, this.store.timedActions(task.id).resumeGpus ?? task.gpus ?? []);
        if (task.state === 'suspending' || task.state === 'resuming') this.reconcile(adopted);
        if (task.killRequested) this.carryOnKill(adopted);
      } else {
        this.ended(task.id, { status: readExitStatus(files.status), wrapper: null, peakMemoryBytes: task.peakMemoryBytes }, true);
      }
    }
  }

  /**
   * The task's process, if it lives: the one recorded, else the launch's claimant (a wrapper
   * started by a daemon that crashed before recording it, which won the claim from ours).
   */
  private liveProcess(task: Task, claimFile: string): Claim | null {
    if (task.pid !== null && task.pidStartTime !== null && isSameLiveProcess(task.pid, task.pidStartTime)) return { pid: task.pid, startTime: task.pidStartTime };
    const claim = this.claimOf(task.id, claimFile);
    return claim !== null && claim.pid !== task.pid && isSameLiveProcess(claim.pid, claim.startTime) ? claim : null;
  }

  /** The launch's claimant as recorded; null when there is none or it cannot be read (said in the log). */
  private claimOf(id: string, claimFile: string): Claim | null {
    try {
      return readClaim(claimFile);
    } catch (err) {
      this.log.error({ task: id, err }, 'launch claim unreadable');
      return null;
    }
  }

  /**
   * A task the last daemon recorded as starting: its wrapper may never have been spawned, may be
   * running the command, or may have ended. The claim tells which; only without one is the
   * command started (and should a wrapper of the dead daemon claim it first after all, ours runs
   * nothing and the claimant is adopted: see `ended`).
   */
  private reconcileStart(task: Task, files: ReturnType<typeof taskFiles>, atStartup = true): void {
    // Outside start-up (a spawner lost), an end frees its sandbox and lets the queue move.
    const endedHere = (): void => {
      if (atStartup) return;
      this.options.sandbox.release(this.store.get(task.id));
      this.options.onChange();
    };
    let claim: Claim | null;
    try {
      claim = readClaim(files.claim);
    } catch (err) {
      const message = `its launch claim is unreadable (${err instanceof Error ? err.message : String(err)}); whether it ran is unknown`;
      this.events.commit(task.id, { state: 'lost', finishedAt: this.options.now(), message }, 'task.ended', { state: 'lost' });
      endedHere();
      return;
    }
    if (claim === null) {
      if (task.killRequested) {
        this.events.commit(task.id, { state: 'killed', finishedAt: this.options.now(), message: 'cancelled before it started' }, 'task.ended', { state: 'killed' });
        endedHere();
        return;
      }
      this.log.info({ task: task.id }, atStartup ? 'task was starting when the last daemon stopped and never ran; starting it' : 'task never ran; starting it again');
      this.start(task, task.gpus ?? [], task.smRanges === null ? null : [...task.smRanges]);
      return;
    }
    if (!isSameLiveProcess(claim.pid, claim.startTime)) {
      this.ended(task.id, { status: readExitStatus(files.status), wrapper: null, peakMemoryBytes: task.peakMemoryBytes }, atStartup);
      return;
    }
    this.events.commit(task.id, { state: 'running', pid: claim.pid, pidStartTime: claim.startTime, adopted: true }, 'task.started', { pid: claim.pid, gpus: (task.gpus ?? []).map((g) => g.uuid), adopted: true });
    this.supervisor.watchAdopted(task.id, claim.pid, claim.startTime, files.status, task.regionPath);
    this.log.info({ task: task.id, taskPid: claim.pid }, 'adopted a task whose start the last daemon did not record');
    if (task.killRequested) this.carryOnKill(this.store.get(task.id));
  }

  close(): void {
    this.closed = true;
    for (const t of this.reconcileTimers) clearTimeout(t);
    this.reconcileTimers.clear();
    this.residency?.close();
    this.spawner.close();
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
    const limit = computeLimitPercent(task);
    const at = this.options.now();
    let message: string | null = null;
    let mpsPipeDir: string | null = null;
    let env: Record<string, string>;
    try {
      if (smRanges !== null) {
        // An MPS server serves one user's processes at a time (the control daemon queues the
        // next user's until it exits), so partitions of tasks that run as their tenants' own
        // users could not run at once under it; they run without it, taking turns.
        const ownUser = this.options.sandbox.userFor(task.tenant) !== null;
        const mps = ownUser
          ? { pipeDir: null, problem: "the task runs as its tenant's own user (sandbox.users) and an MPS server serves one user at a time" }
          : (this.options.mps?.ensure() ?? { pipeDir: null, problem: 'this daemon has no MPS control' });
        if (mps.pipeDir === null && this.options.mps?.status().mode === 'on') {
          this.endFailed(task.id, at, `not started: MPS is required (mps: on) but ${mps.problem}`);
          return;
        }
        mpsPipeDir = mps.pipeDir;
        // Said on the task, so whoever wonders why its partition is slow sees it.
        if (mpsPipeDir === null) message = `running without MPS (${mps.problem}): SM partitions on one GPU take turns instead of running at once`;
      }
      const sandbox = this.options.sandbox.prepare(task, gpus);
      env = { ...taskEnvironment(sandbox.baseEnv, task, gpus, limit, smRanges === null ? null : { ranges: smRanges, mpsPipeDir }), ...sandbox.wrapperEnv };
      Object.assign(env, grantVariable(env)); // its compute grants, written by root (boards per user)
      const ownUser = this.options.sandbox.userFor(task.tenant) !== null;
      if (this.swapOn(task, gpus)) {
        // The library's control sockets (native/shim/SWAP.md), beside the task's region. A task
        // run as its tenant's own user has them in its own directory (0700, its user's), made
        // by the library as that user: only that user and the daemon (root) can connect.
        const dir = swapDirFor(task.regionPath);
        if (!ownUser) mkdirSync(dir, { recursive: true, mode: 0o700 });
        env['GPUSHARE_SWAP'] = dir;
        // On an overcommitted GPU the library refuses managed memory beyond the card's free memory (SWAP.md).
        const oc = this.options.overcommit;
        if (oc?.gpus().some((g) => gpus.some((t) => t.uuid === g.uuid)) === true) {
          env['GPUSHARE_OVERCOMMIT'] = '1';
          // An allocation the card cannot hold waits for the room the daemon makes (SWAP.md,
          // "Waiting for room"); the daemon answers at its bound, this is the library's backstop.
          env['GPUSHARE_SWAP_ROOM_WAIT_MS'] = String(Math.round(oc.config.residency.maxWaitMs + ROOM_WAIT_SLACK_MS));
        }
      }
      // The intent, durable before the process exists: after a crash from here on, the next
      // daemon finds `starting` and asks the launch claim rather than starting it again. No
      // event: the state lasts only until `running` below, unless a crash cuts it short.
      this.store.update(task.id, { state: 'starting', gpus, smRanges, computeLimitPercent: limit, startedAt: at, message });
    } catch (err) {
      this.startFailed(task.id, at, err);
      return;
    }
    // Once `starting` is committed (with the queue pass's other starts): the spawner forks and
    // execs off this event loop; until it answers the task is `starting`.
    this.store.afterCommit(() => this.spawn(task, env, at, { gpus, smRanges, mpsPipeDir, files }));
  }

  /**
   * Whether the task gets slice swap (GPUSHARE_SWAP): swap on, GPUs, and, run as its tenant's
   * own user, its region where the sandbox puts it (the library makes the socket directory as
   * that user). Memory overcommit counts a task without it at its promise (residency-shell.ts).
   */
  private swapOn(task: Task, gpus: readonly TaskGpu[]): boolean {
    const ownUser = this.options.sandbox.userFor(task.tenant) !== null;
    return this.options.swap === true && gpus.length > 0 && (!ownUser || this.options.sandbox.regionPath(task.id) === task.regionPath);
  }

  private spawn(task: Task, env: Record<string, string>, at: number, placed: Placed): void {
    const files = placed.files;
    faultPoint('start.after-intent');
    // A synchronous throw (Node's spawn of the spawner can throw) becomes the rejection below.
    let launching: Promise<Launched>;
    try {
      launching = launch(task, env, this.options.native, files, this.spawner);
    } catch (err) {
      launching = Promise.reject(err);
    }
    launching.then(
      (launched) => this.launched(task.id, launched, placed),
      (err: unknown) => {
        if (this.closed) return; // still `starting`: the next daemon asks the claim
        if (err instanceof SpawnerLostError) {
          // Asked a moment later, never in the same chain: a wrapper forked just before the loss
          // has time to claim, and a spawner that cannot start cannot spin the event loop.
          this.log.warn({ task: task.id, err: err.message }, 'whether the task started is unknown; asking its launch claim shortly');
          const timer = setTimeout(() => {
            this.reconcileTimers.delete(timer);
            const now = this.store.get(task.id);
            if (!this.closed && now.state === 'starting') this.reconcileStart(now, files, false);
          }, RECONCILE_DELAY_MS);
          this.reconcileTimers.add(timer);
          return;
        }
        if (err instanceof SpawnError && err.step === 'cwd' && err.code === 'ENOENT') {
          this.endFailed(task.id, this.options.now(), `its working directory ${task.cwd} no longer exists`);
        } else {
          this.startFailed(task.id, at, err instanceof SpawnError ? new Error(`could not start ${this.options.native.exec} for task ${task.id}: ${err.message}`) : err);
        }
        this.options.sandbox.release(this.store.get(task.id));
        this.options.onChange(); // its GPUs are free again
      },
    );
  }

  /**
   * The spawner started the task's wrapper. Recorded `running` with the others the same answer
   * from the spawner brought (one commit for them all: their promises settle in one run of
   * microtasks, and the flush queued behind them runs last).
   */
  private launched(id: string, launched: Launched, placed: Placed): void {
    if (this.closed) return; // `starting` with a live claimant: the next daemon adopts it
    this.launchedBatch.push({ id, launched, placed });
    if (this.launchedBatch.length === 1) queueMicrotask(() => this.recordLaunched());
  }

  private recordLaunched(): void {
    const batch = this.launchedBatch.splice(0);
    if (this.closed) return;
    this.store.transaction(() => {
      for (const { id, launched, placed } of batch) {
        try {
          this.running(id, launched, placed);
        } catch (err) {
          // This task stays `starting` (its wrapper runs): the next daemon adopts it through its claim.
          this.log.error({ task: id, err }, 'could not record a started task');
        }
      }
    });
  }

  /** A started task: recorded `running` and watched. */
  private running(id: string, launched: Launched, placed: Placed): void {
    faultPoint('start.after-spawn');
    const { gpus, smRanges, mpsPipeDir, files } = placed;
    const task = this.store.get(id);
    // Watched first: should the commit below fail, its end is still seen (and ends it from `starting`).
    this.supervisor.watchSpawned(id, launched.pid, launched.startTime, files.status, task.regionPath);
    this.events.commit(id, { state: 'running', pid: launched.pid, pidStartTime: launched.startTime }, 'task.started', {
      pid: launched.pid,
      gpus: gpus.map((g) => g.uuid),
      ...(smRanges !== null ? { smRanges: smRanges.map((r) => ({ uuid: r.uuid, offset: r.offset, count: r.count })), mps: mpsPipeDir !== null } : {}),
    });
    this.store.afterCommit(() => faultPoint('start.after-commit'));
    this.log.info({ task: id, taskPid: launched.pid, gpus: gpus.map((g) => g.index), ...(smRanges !== null ? { smRanges } : {}) }, 'task started');
    // Killed while it was starting: the kill could not signal a process that did not exist yet.
    if (task.killRequested) this.store.afterCommit(() => this.carryOnKill(this.store.get(id)));
  }

  /** A start that could not happen: the task ends `failed`, saying why. */
  private endFailed(id: string, at: number, message: string): void {
    this.events.commit(id, { state: 'failed', finishedAt: at, message }, 'task.ended', { state: 'failed' });
  }

  /** As endFailed, for an error nobody expected (logged as one). */
  private startFailed(id: string, at: number, err: unknown): void {
    this.endFailed(id, at, err instanceof Error ? err.message : String(err));
    this.log.error({ task: id, err }, 'task could not be started');
  }


  /**
   * Signals a started task's process group (continuing it if suspended, so the signal arrives),
   * then SIGKILL at `deadline` (epoch ms) if it is still there. The kill request, with its signal
   * and deadline (killSignal, killDeadline), is the caller's to commit first.
   */
  signal(task: Task, signal: number, deadline: number): void {
    faultPoint('kill.after-request');
    if (task.pid === null || task.pidStartTime === null || !isSameLiveProcess(task.pid, task.pidStartTime)) return;
    signalGroup(task.pid, signal);
    this.options.sandbox.signal(task, signal);
    // A suspended group is stopped: it only receives the signal once continued. It dies
    // without its GPU state ever being restored (the driver frees the host copy with it).
    if (task.state !== 'running') signalGroup(task.pid, SIGCONT);
    faultPoint('kill.after-signal');
    this.scheduleHardKill(task, deadline);
  }

  /**
   * A kill the last daemon had under way: its signal again (the dead daemon may have crashed
   * before sending it; a second delivery is the lesser harm), and the escalation re-armed at the
   * stored deadline, which fires at once if it has passed.
   */
  private carryOnKill(task: Task): void {
    const stored = this.store.timedActions(task.id);
    const now = this.options.now();
    const deadline = stored.killDeadline ?? now + this.options.killGraceMs;
    const signal = stored.killSignal === null ? SIGTERM : (signalNumber(stored.killSignal) ?? SIGTERM);
    this.log.info({ task: task.id, signal: signalName(signal), inMs: Math.max(0, deadline - now) }, 'carrying on a kill from before the restart');
    if (deadline > now) this.signal(task, signal, deadline);
    else this.scheduleHardKill(task, deadline);
  }

  /** Starts a suspension; the promise says how it went (the task is back to running if it failed). */
  suspend(task: Task, why: { preemptedBy: string | null; autoResume: boolean; by: string }): Promise<SuspendResult> {
    const api = this.options.checkpoint;
    const pid = task.pid;
    const swap = this.options.swap === true;
    if ((!api && !swap) || pid === null) return Promise.resolve({ ok: false, code: ErrorCodes.checkpointUnavailable, message: this.checkpointProblem() });
    this.events.commit(task.id, { state: 'suspending', preemptedBy: why.preemptedBy, autoResume: why.autoResume }, 'task.suspending', { by: why.by, preemptedBy: why.preemptedBy });
    faultPoint('suspend.after-intent');
    const bytes = regionBytes(task.regionPath);
    const started = performance.now();
    const op = (async (): Promise<SuspendResult> => {
      // Slice swap first; the checkpoint API where the library cannot (its reason kept).
      // A slice overcommit swapped out is out already: the group only stops.
      const swapped = this.residency?.parked(task.id) === true ? this.residency.handOver(task.id, pid) : swap ? await this.swaps.out(task.id, swapDirFor(task.regionPath), pid) : null;
      const r: GroupResult = swapped?.ok === true
        ? { ok: true, pids: [] }
        : api
          ? await suspendGroup(api, pid, this.options.lockTimeoutMs)
          : { ok: false, error: { code: CHECKPOINT_ERROR_CODES.failed, message: `slice swap: ${swapped?.message ?? 'off'}; ${this.checkpointProblem()}`, cudaResult: null, call: 'swap' } };
      const path = pathOf(swapped);
      this.busy.delete(task.id);
      if (this.closed || this.store.get(task.id).state !== 'suspending') return r.ok ? { ok: true } : { ok: false, code: r.error.code, message: r.error.message };
      const ms = Math.round(performance.now() - started);
      if (r.ok) {
        faultPoint('suspend.after-checkpoint');
        this.events.commit(task.id, { state: 'suspended', suspendedAt: this.options.now(), suspensions: task.suspensions + 1, message: null }, 'task.suspended', { ms, gpuBytes: bytes, processes: swapped?.ok === true ? swapped.value.processes : r.pids.length, preemptedBy: why.preemptedBy, ...path });
        faultPoint('suspend.after-commit');
        this.log.info({ task: task.id, ms, gpuBytes: bytes, preemptedBy: why.preemptedBy, ...path }, 'task suspended');
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
    const swapped = this.swaps.has(task.id);
    if ((!api && !swapped) || pid === null) return;
    const old = task.gpus ?? [];
    const moved = old.length === gpus.length && old.some((g, i) => g.uuid !== gpus[i]?.uuid);
    // The driver maps every checkpointed GPU to its new one; CUDA_VISIBLE_DEVICES in the task's
    // environment keeps naming the old UUIDs, and its device ordinals keep their meaning.
    const pairs: GpuPair[] = moved ? old.map((g, i) => ({ from: g.uuid, to: gpus[i]?.uuid ?? g.uuid })) : [];
    this.resumeTargets.set(task.id, gpus);
    this.events.commit(task.id, { state: 'resuming', resumeGpus: gpus }, 'task.resuming', { gpus: gpus.map((g) => g.uuid), moved });
    faultPoint('resume.after-intent');
    const bytes = regionBytes(task.regionPath);
    const started = performance.now();
    const op = (async () => {
      // A swapped slice comes back where it was, or moves (move.ts: the driver moves its
      // contexts, the library its memory).
      let move: MoveResult | null = null;
      if (swapped && moved) move = api ? await moveSwapped(api, this.swaps, task.id, pid, pairs, this.options.lockTimeoutMs) : { ok: false, step: 'checkpoint', message: `moving a swapped-out task needs the CUDA checkpoint API to move its contexts: ${this.checkpointProblem()}`, restored: true };
      const back: SwapResult | null = !swapped
        ? null
        : move === null
          ? await this.swaps.in(task.id, pid)
          : move.ok
            ? { ok: true, value: move.swap }
            : { ok: false, code: 'swap-refused', message: `move failed at its ${move.step} step: ${move.message}${move.restored ? '' : ' (and putting it back failed too)'}` };
      const r: GroupResult = back === null
        ? await resumeGroup(api as CheckpointApi, pid, pairs)
        : back.ok
          ? { ok: true, pids: [] }
          : { ok: false, error: { code: CHECKPOINT_ERROR_CODES.failed, message: `slice swap: ${back.message}`, cudaResult: null, call: 'swap' } };
      const path = pathOf(back);
      this.busy.delete(task.id);
      this.resumeTargets.delete(task.id);
      if (this.closed || this.store.get(task.id).state !== 'resuming') return;
      const ms = Math.round(performance.now() - started);
      if (r.ok) {
        faultPoint('resume.after-restore');
        this.events.commit(task.id, { state: 'running', gpus, smRanges: rangesOnto(task.smRanges, gpus), resumeGpus: null, preemptedBy: null, autoResume: false, message: null }, 'task.resumed', { ms, gpuBytes: bytes, gpus: gpus.map((g) => g.uuid), moved, processes: back?.ok === true ? back.value.processes : r.pids.length, ...path, ...(move?.ok === true ? { move: { ...move.timings, devices: move.swap.devices } } : {}) });
        faultPoint('resume.after-commit');
        this.log.info({ task: task.id, ms, moved, ...path }, 'task resumed');
      } else {
        this.events.commit(task.id, { state: 'suspended', resumeGpus: null, message: `resume failed: ${r.error.message}` }, 'task.resume-failed', { code: r.error.code, cudaResult: r.error.cudaResult, message: r.error.message });
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
    const deadline = this.options.now() + this.options.killGraceMs;
    this.events.commit(victim.id, { killRequested: true, killSignal: 'SIGTERM', killDeadline: deadline, message: `preempted by task ${by}: killed because it ${why}` }, 'task.evicted', { preemptedBy: by });
    this.signal(victim, SIGTERM, deadline);
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
      // A finished restore put the task where it was being restored to.
      const gpus = task.state === 'resuming' ? (this.resumeTargets.get(task.id) ?? task.gpus ?? []) : (task.gpus ?? []);
      this.resumeTargets.delete(task.id);
      const running = (on: readonly TaskGpu[]): void => this.events.commit(task.id, { state: 'running', gpus: on, smRanges: rangesOnto(task.smRanges, on), resumeGpus: null, preemptedBy: null, autoResume: false }, 'task.reconciled', { state: 'running' });
      const old = task.gpus ?? [];
      if (this.options.swap !== true || old.every((g, i) => g.uuid === gpus[i]?.uuid)) return running(gpus);
      // A move cut short before its restore leaves a swapped task where it was (its library
      // swaps it back in there, its daemon gone): where its memory is says which (move.ts).
      const op = (async () => {
        const devices = await swapDevices(swapDirFor(task.regionPath), pid);
        this.busy.delete(task.id);
        if (this.closed || this.store.get(task.id).state !== 'resuming') return;
        running(devices.length > 0 && devices.every((d) => old.some((g) => g.uuid === d)) ? old : gpus);
        this.options.onChange();
      })();
      this.busy.set(task.id, op);
      return;
    }
    const op = (async () => {
      // A task its dead daemon swapped out is stopped with its slice on the host: continued, its
      // library swaps it back in (the connection is gone) and the driver's lock can reach it.
      if (this.options.swap === true) signalGroup(pid, SIGCONT);
      const r = await suspendGroup(api, pid, this.options.lockTimeoutMs);
      this.busy.delete(task.id);
      this.resumeTargets.delete(task.id);
      if (this.closed || !STARTED_STATES.has(this.store.get(task.id).state)) return;
      if (r.ok) this.events.commit(task.id, { state: 'suspended', resumeGpus: null, autoResume: true, suspendedAt: this.options.now() }, 'task.reconciled', { state: 'suspended' });
      else this.events.commit(task.id, { state: 'running', resumeGpus: null, preemptedBy: null, autoResume: false, message: `left running after a restart: ${r.error.message}` }, 'task.reconciled', { state: 'running', message: r.error.message });
      this.options.onChange();
    })();
    this.busy.set(task.id, op);
  }

  /** SIGKILL at `deadline` (epoch ms, stored with the kill request), at once if it has passed. */
  private scheduleHardKill(task: Task, deadline: number): void {
    if (this.killTimers.has(task.id) || task.pid === null || task.pidStartTime === null) return;
    const { pid, pidStartTime } = task;
    const timer = setTimeout(() => {
      this.killTimers.delete(task.id);
      if (isSameLiveProcess(pid, pidStartTime)) {
        this.log.warn({ task: task.id, taskPid: pid }, 'task outlived its kill grace period; sending SIGKILL');
        signalGroup(pid, SIGKILL);
        this.escalated.add(task.id);
        faultPoint('kill.after-escalation');
      }
    }, Math.max(0, deadline - this.options.now()));
    timer.unref();
    this.killTimers.set(task.id, timer);
  }

  /** Watches the live claimant of the task's launch in place of our wrapper; false when it is gone too. */
  private adoptClaimant(task: Task): boolean {
    const files = taskFiles(this.options.stateDir, task.id);
    const claim = this.claimOf(task.id, files.claim);
    // Our own wrapper as the claimant: the command itself exited 120, the status file says so.
    if (claim === null || claim.pid === task.pid || !isSameLiveProcess(claim.pid, claim.startTime)) return false;
    this.events.commit(task.id, { pid: claim.pid, pidStartTime: claim.startTime, adopted: true }, 'task.adopted', { pid: claim.pid, state: task.state, claimant: true });
    this.supervisor.watchAdopted(task.id, claim.pid, claim.startTime, files.status, task.regionPath);
    this.log.warn({ task: task.id, taskPid: claim.pid }, "a wrapper of the last daemon had claimed the task's launch; following it");
    if (task.killRequested) {
      const timer = this.killTimers.get(task.id);
      if (timer) clearTimeout(timer);
      this.killTimers.delete(task.id);
      this.carryOnKill(this.store.get(task.id));
    }
    return true;
  }

  private ended(id: string, ending: Ending, atStart = false): void {
    this.residency?.forget(id);
    this.swaps.drop(id);
    const task = this.store.get(id);
    // Our wrapper ran nothing: a wrapper of the last daemon holds the launch claim. That one is the task.
    if (ending.wrapper?.code === EXIT_CLAIM_TAKEN && STARTED_STATES.has(task.state)) {
      if (this.adoptClaimant(task)) return;
      ending = { ...ending, wrapper: null };
    }
    const timer = this.killTimers.get(id);
    if (timer) clearTimeout(timer);
    this.killTimers.delete(id);
    // An adopted task is not our child, and the SIGKILL to its group took its wrapper too, so
    // nothing else says how it ended: our own escalation does.
    if (this.escalated.delete(id) && ending.status === null && ending.wrapper === null) ending = { ...ending, wrapper: { code: null, signal: 'SIGKILL' } };
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

/**
 * How a suspension or resumption went, for its event and log line: `path` swap (with the bytes the
 * library moved, its seconds and GB/s) or checkpoint (with why swap was not used, when it was tried).
 */
function pathOf(swapped: SwapResult | null): Record<string, unknown> {
  if (swapped === null) return { path: 'checkpoint' };
  if (!swapped.ok) return { path: 'checkpoint', swapRefused: swapped.message };
  return { path: 'swap', swappedBytes: swapped.value.bytes, residentBytes: swapped.value.residentBytes, swapSeconds: Math.round(swapped.value.seconds * 1000) / 1000, gbps: swapped.value.gbps };
}
