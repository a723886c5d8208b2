/**
 * The node daemon: what the API asks of this machine (submit, kill, suspend, resume, list,
 * tenants, GPUs, events), wired to the parts that do it. Each change goes decide, then commit,
 * then perform: the queue (queue.ts) asks the planner (planner.ts, pure) what to start, resume,
 * preempt or leave waiting and why; each decision is committed to the store (one SQLite
 * transaction per state change: the task row, its event, and for API changes an audit row)
 * before the lifecycle layer (lifecycle.ts) touches a process, so a crash between the two leaves
 * a state the next start can reconcile. Admission is pure functions (admission.ts); tenants,
 * quotas and the audit log are their own service (tenant-service.ts); events go to listeners
 * through TaskEvents (events.ts).
 */
import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { Logger } from 'pino';
import { describeIssues, ErrorCodes, GsError, type SmGroups } from '../domain/index.js';
import type { GpuWithSlices } from '../contract/gpus.js';
import type { Principal } from '../contract/principal.js';
import { shown } from '../contract/shown.js';
import type { SubmitInput } from '../contract/task.js';
import type { GpuBackend } from '../gpu/backend.js';
import type { CheckpointApi } from '../gpu/checkpoint.js';
import { parsePolicy, type Policy } from '../scheduler/index.js';
import { admit } from './admission.js';
import { TaskEvents, type EventListener } from './events.js';
import { taskFiles, type NativePaths } from './launcher.js';
import { GpuHealthBook, readingOf, type GpuFaultReason, type GpuHealthState, type GpuReading } from './gpu-health.js';
import { GpuInventory } from './inventory.js';
import type { MoveRefusal } from './move-plan.js';
import { checkOvercommitGpus, ratioOf, type OvercommitConfig } from './overcommit-config.js';
import { Lifecycle } from './lifecycle.js';
import type { MpsControl } from './mps.js';
import type { PreemptionPolicy } from './planner.js';
import { signalName, signalNumber } from './proc.js';
import { gpusWithSlices } from './slices.js';
import type { AuditEntry, AuditRecord, EventRecord, TaskStore } from './store/tasks.js';
import type { Quota } from './store/tenants.js';
import { TaskQueue, type QueueObserver } from './queue.js';
import { diskUse, removeDir } from './task-dir.js';
import { Sandbox } from './sandbox.js';
import { canEnter, type DirStat, type TaskUser } from './sandbox-plan.js';
import type { TaskCpuGroup } from './task-cpu.js';
import { TenantService, type Actor } from './tenant-service.js';
import { checkTenantName, type QuotaInput, type TenantView } from './tenants.js';
import { HOLDING_STATES, LIVE_STATES, STARTED_STATES, type Task, type TaskGpu, type WaitReason } from '../contract/task.js';
import type { DeviceUsage } from './supervisor.js';


export { PREEMPTION_POLICIES, type PreemptionPolicy } from './planner.js';
export type { EventListener } from './events.js';

/** A task removed (or, in a dry run, that would be): what its directory held. */
/** A live task as the monitor sees it (Daemon.monitoredTasks). */
export interface MonitoredTask {
  readonly task: Task;
  /** The GPUs it holds, by CUDA ordinal inside the task (a resuming task: its targets). */
  readonly gpus: readonly TaskGpu[];
  /** Its processes' usage per ordinal, about a second old; null before its first CUDA call. */
  readonly usage: readonly DeviceUsage[] | null;
}

export interface RemovedTask {
  readonly id: string;
  readonly freedBytes: number;
}

export interface DaemonOptions {
  /** Hears of each queue pass's decisions (the metrics exporter, src/monitor/metrics); absent: nobody. */
  readonly observer?: QueueObserver;
  readonly stateDir: string;
  readonly backend: GpuBackend;
  readonly store: TaskStore;
  readonly logger: Logger;
  readonly native: NativePaths;
  readonly policy: string;
  readonly killGraceMs: number;
  /** Tasks' users, environments, directories and cgroups (sandbox.ts); absent: the daemon's user, no cgroups, a clean environment. */
  readonly sandbox?: Sandbox;
  /** The low-weight CPU group every start runs in (task-cpu.ts); absent: the daemon's own. */
  readonly taskCpu?: TaskCpuGroup | null;
  readonly now?: () => number;
  /** The CUDA checkpoint API; null: suspend, resume and preemption by suspension are unavailable (`checkpointProblem` says why). */
  readonly checkpoint?: CheckpointApi | null;
  readonly checkpointProblem?: string;
  readonly preemption?: PreemptionPolicy;
  /** Slice swap (lifecycle.ts, swap.ts): tasks' memory swappable, suspension by swap first. */
  readonly swap?: boolean;
  /** Memory overcommit (overcommit-config.ts); null or absent: no GPU is overcommitted. */
  readonly overcommit?: OvercommitConfig | null;
  /** How long lock may wait for a task's GPU work to drain; 0: as long as it takes. */
  readonly lockTimeoutMs?: number;
  /** The MPS control daemon sm-partition tasks run under (mps.ts); null or absent: none. */
  readonly mps?: MpsControl | null;
  /** What the driver groups of each GPU's SMs, by UUID (smgroups.ts); absent GPUs: every whole group of 8. */
  readonly smGroups?: ReadonlyMap<string, SmGroups>;
}

/**
 * 12 random hex digits (48 bits): a v4 UUID's first two groups, which hold no fixed bits. Node
 * draws UUIDs from a cached pool of entropy: one system call per 128 tasks, where randomBytes
 * made one per task (1% of the daemon's time at 500 starts a second).
 */
function newTaskId(): string {
  const u = randomUUID();
  return u.slice(0, 8) + u.slice(9, 13);
}

/** A submission checked and decided, not yet stored (Daemon.prepareSubmission). */
interface PreparedSubmission {
  readonly input: SubmitInput;
  readonly principal: Principal;
  readonly tenant: string | null;
  readonly request: ReturnType<typeof admit>;
  readonly cwd: string;
  readonly id: string;
  readonly at: number;
}

export class Daemon {
  private readonly store: TaskStore;
  private readonly log: Logger;
  private readonly policy: Policy;
  private readonly now: () => number;
  private readonly bus: TaskEvents;
  private readonly lifecycle: Lifecycle;
  /** Tenants, quotas and the audit log. */
  readonly tenantService: TenantService;
  private readonly queue: TaskQueue;
  /** withWaiting's answers, by record (dropped with the record). */
  private readonly waitingViews = new WeakMap<Task, { waiting: WaitReason; view: Task }>();
  private readonly sandbox: Sandbox;
  private closed = false;
  /** submitSoon()'s submissions waiting for this turn's commit. */
  private pendingSubmissions: { readonly prepared: PreparedSubmission; resolve: (t: Task) => void; reject: (err: unknown) => void }[] = [];
  /** The GPUs admission last read, and when (performance.now() ms): see admissionGpus. */
  private readonly inventory: GpuInventory;
  /** Cordons and faults: GPUs that take no new placements (gpu-health.ts). */
  private readonly health: GpuHealthBook;

  constructor(private readonly options: DaemonOptions) {
    this.store = options.store;
    this.log = options.logger;
    this.store.onAfterCommitError = (err) => this.log.error({ err }, 'work waiting for a commit failed (the commit stands)');
    this.now = options.now ?? Date.now;
    const policy = parsePolicy(options.policy);
    if (!policy.ok) throw new GsError(ErrorCodes.invalidArgument, `policy: ${describeIssues(policy.issues)}`);
    this.policy = policy.value;
    this.bus = new TaskEvents(this.store, this.log, this.now);
    this.tenantService = new TenantService(this.store, this.now, () => this.queue.usage());
    this.sandbox = options.sandbox ?? Sandbox.unsandboxed();
    this.lifecycle = new Lifecycle({
      stateDir: options.stateDir,
      store: this.store,
      events: this.bus,
      logger: this.log,
      now: this.now,
      native: options.native,
      killGraceMs: options.killGraceMs,
      sandbox: this.sandbox,
      checkpoint: options.checkpoint ?? null,
      checkpointProblem: options.checkpointProblem,
      swap: options.swap ?? false,
      overcommit: options.overcommit ? { config: options.overcommit, gpus: () => this.overcommittedGpus() } : undefined,
      preemption: options.preemption ?? 'suspend',
      lockTimeoutMs: options.lockTimeoutMs ?? 0,
      mps: options.mps ?? null,
      taskCpu: options.taskCpu ?? null,
      onChange: () => this.queue.passSoon(),
    });
    this.health = new GpuHealthBook(this.store, this.bus, this.now);
    const overcommit = options.overcommit ?? null;
    this.inventory = new GpuInventory(options.backend, options.smGroups, undefined, undefined, this.health, (index) => ratioOf(overcommit, index));
    checkOvercommitGpus(overcommit, this.inventory.gpus().map((g) => g.index));
    this.queue = new TaskQueue({
      store: this.store,
      inventory: this.inventory,
      lifecycle: this.lifecycle,
      events: this.bus,
      logger: this.log,
      policy: this.policy,
      quotas: () => this.tenantService.quotas(),
      preemption: options.preemption ?? 'suspend',
      suspendable: options.checkpoint != null || options.swap === true,
      observer: options.observer,
    });
  }

  /** The GPUs memory overcommit covers, with their cards' memory (what the residents must fit). */
  private overcommittedGpus(): { uuid: string; capacityBytes: number }[] {
    const overcommit = this.options.overcommit ?? null;
    return this.inventory.gpus().filter((g) => ratioOf(overcommit, g.index) > 1).map((g) => ({ uuid: g.uuid, capacityBytes: g.memoryTotalBytes }));
  }

  /** Reconciles with what survived the last daemon, then starts whatever fits. */
  start(): void {
    this.lifecycle.adopt();
    // What a crashed daemon left of tasks that ended meanwhile: cgroups (and anything still in
    // them) and own directories.
    const swept = this.sandbox.sweep(new Set(this.store.list().filter((t) => STARTED_STATES.has(t.state)).map((t) => t.id)));
    if (swept > 0) this.log.info({ swept }, 'removed the cgroups and directories of tasks that ended while no daemon ran');
    // Partitions that outlived the last daemon are clients of its MPS control daemon: adopt it
    // now, so that it is known (and stopped only once they are gone).
    if (this.partitionClients() > 0) this.options.mps?.ensure();
    this.queue.pump();
  }

  /** sm-partition tasks whose processes exist (MPS clients, or about to be). */
  partitionClients(): number {
    return this.store.list().filter((t) => STARTED_STATES.has(t.state) && t.request.isolation === 'sm-partition').length;
  }

  close(): void {
    // Gathered submissions are stored (their callers get their answers, or their errors) before anything stops.
    this.flushSubmissions();
    if (!this.closed) this.options.mps?.stop(this.partitionClients());
    this.closed = true;
    this.queue.close();
    this.lifecycle.close();
    this.sandbox.close();
    this.bus.close();
  }

  onEvent(listener: EventListener): () => void {
    return this.bus.onEvent(listener);
  }

  /** Events after `since`: all of them, or (`tenant`) that tenant's tasks' only. */
  events(since: number, limit: number, tenant?: string): EventRecord[] {
    return this.store.events(since, limit, tenant);
  }

  auditLog(since: number, limit: number): AuditRecord[] {
    return this.tenantService.auditLog(since, limit);
  }

  /** Records a change the API refused, so the audit log shows attempts as well as changes. */
  recordRefusal(by: Actor, entry: Omit<AuditEntry, 'actor' | 'role'>): void {
    this.tenantService.audit(by, entry);
  }

  tenants(): TenantView[] {
    return this.tenantService.list();
  }

  tenant(name: string): TenantView {
    return this.tenantService.get(name);
  }

  createTenant(name: string, quota: QuotaInput, by: Actor): TenantView {
    return this.tenantService.create(name, quota, by);
  }

  /** Changes a tenant's quota; lowering it below what runs now stops nothing, it holds back what is queued. */
  setQuota(name: string, quota: QuotaInput, by: Actor): TenantView {
    this.tenantService.setQuota(name, quota, by);
    this.queue.pump(); // a raised quota may let queued tasks start
    return this.tenantService.get(name);
  }

  deleteTenant(name: string, by: Actor): void {
    this.tenantService.delete(name, by);
  }

  /** See TenantService.declare. */
  declareTenant(name: string, quota: Quota, actor: string): void {
    this.tenantService.declare(name, quota, actor);
  }

  /** GPUs with their slices, whoever's they are, and their cordons and faults. */
  gpus(): GpuWithSlices[] {
    const gpus = this.options.backend.gpus();
    this.observeGpus(gpus.map(readingOf));
    return gpusWithSlices(gpus, {
      holding: this.store.list().filter((t) => HOLDING_STATES.has(t.state)),
      gpusOf: (t) => this.lifecycle.gpusOf(t),
      usageOf: (id) => this.lifecycle.usage(id),
      healthOf: (uuid) => this.health.state(uuid),
    });
  }

  /** A GPU's cordon and fault, by UUID (the monitor's sample reads them). */
  gpuHealth(uuid: string): GpuHealthState {
    return this.health.state(uuid);
  }

  /**
   * A fault seen on a GPU (the alert engine's XID or uncorrectable ECC): no new placements there
   * until it recovers or an admin clears it; running tasks are left alone.
   */
  markGpuFault(uuid: string, reason: GpuFaultReason): void {
    if (!this.health.markFault(uuid, reason)) return;
    this.log.warn({ gpu: uuid, fault: reason.kind, code: reason.code }, 'GPU fault: no new placements on it until it recovers or an admin clears it');
    this.queue.passSoon(); // queued tasks' reasons now name the fault
  }

  /** What the backend or the monitor read of the GPUs: faults recover (a reset, ECC back to 0) and the queue may go on. */
  observeGpus(readings: readonly GpuReading[], at?: number): void {
    const before = this.health.version();
    this.health.observe(readings, at);
    if (this.health.version() !== before) this.queue.passSoon();
  }

  /** No new placements on the GPU (index or UUID, resolved by the caller) until uncordoned. */
  cordonGpu(uuid: string, by: Actor, note: string | null): GpuHealthState {
    const state = this.health.cordon(uuid, by, note);
    this.queue.passSoon(); // queued tasks' reasons now name the cordon
    return state;
  }

  /** Lifts the GPU's cordon and clears its fault; queued work may start there now. */
  uncordonGpu(uuid: string, by: Actor): GpuHealthState {
    const state = this.health.uncordon(uuid, by);
    this.queue.pump();
    return state;
  }

  /**
   * The live tasks (queued ones included) with the GPUs each holds and what its processes hold
   * there, for the monitor's sampler (src/monitor/sampler.ts): the supervisor already reads every
   * region once a second, so the sampler reads none itself.
   */
  monitoredTasks(): MonitoredTask[] {
    return this.store.list().filter((t) => LIVE_STATES.has(t.state)).map((task) => ({ task, gpus: this.lifecycle.gpusOf(task), usage: this.lifecycle.usage(task.id) }));
  }

  /**
   * Goes up whenever the live task list may read differently (TaskStore.liveVersion), why a task
   * waits included: a pass can change that without writing a row (a quota raised, still not enough).
   */
  liveVersion(): number {
    return this.store.liveVersion() + this.queue.waitingVersion();
  }

  list(all: boolean): Task[] {
    return this.store.list(all).map((t) => this.withWaiting(t));
  }

  /** A page of every task, finished ones included (TaskStore.page), with why each waits. */
  page(query: Parameters<TaskStore['page']>[0]): Task[] {
    return this.store.page(query).map((t) => this.withWaiting(t));
  }

  /** A task by id or unique prefix; with `tenant`, among that tenant's tasks only (store.resolve). */
  get(idOrPrefix: string, tenant?: string): Task {
    return this.withWaiting(this.store.resolve(idOrPrefix, tenant));
  }

  /**
   * The task with why it waits, if it is waiting (queued, or suspended waiting to resume). The
   * same record and reason give the same object (the store replaces a record only when its row
   * changes, the queue a reason only when it reads differently), so what the API derives from
   * it (each task's JSON in a list) can be kept by identity.
   */
  private withWaiting(task: Task): Task {
    const waiting = this.queue.waitingOf(task);
    if (waiting === undefined) return task;
    const seen = this.waitingViews.get(task);
    if (seen?.waiting === waiting) return seen.view;
    const view = { ...task, waiting };
    this.waitingViews.set(task, { waiting, view });
    return view;
  }

  /**
   * Validates everything first: a refused submission leaves no trace but its error. Filed under
   * the tenant asked, else the submitter's (`principal`: who asks, for the audit log). Returns
   * the task as committed (queued); the queue pass that starts it runs once this turn of the
   * event loop is over (TaskQueue.submitted).
   */
  submit(input: SubmitInput, principal: Principal, idempotency?: { readonly key: string; readonly bodySha256: string }): Task {
    const prepared = this.prepareSubmission(input, principal);
    const task = this.store.transaction(() => this.storeSubmission(prepared, idempotency));
    return this.submitted(task);
  }

  /**
   * The user a task of `tenant` runs as (sandbox users); null: the daemon's own. Throws for a
   * name a submission would refuse (before a uid is allocated to it) and when none can be allocated.
   */
  taskUser(tenant: string | null): TaskUser | null {
    if (tenant !== null) checkTenantName(tenant);
    return this.sandbox.userFor(tenant);
  }

  /**
   * submit() with its commit shared: bad input throws here, at once, as there; a valid
   * submission is stored with every other that arrives in this turn of the event loop, in one
   * transaction (each its own savepoint), and the promise settles once that commits. A commit
   * of its own was a submission's largest cost at hundreds a second
   * (bench/start-throughput.bench.ts); the answer still waits for the commit, so an answered
   * task is durable.
   */
  submitSoon(input: SubmitInput, principal: Principal): Promise<Task> {
    const prepared = this.prepareSubmission(input, principal);
    return new Promise<Task>((resolve, reject) => {
      this.pendingSubmissions.push({ prepared, resolve, reject });
      if (this.pendingSubmissions.length === 1) setImmediate(() => this.flushSubmissions());
    });
  }

  /** Stores the submissions submitSoon() gathered, in one commit, and answers each. */
  private flushSubmissions(): void {
    const batch = this.pendingSubmissions;
    this.pendingSubmissions = [];
    if (batch.length === 0) return;
    const outcomes: ({ ok: true; task: Task } | { ok: false; err: unknown })[] = [];
    try {
      this.store.transaction(() => {
        for (const p of batch) {
          try {
            outcomes.push({ ok: true, task: this.store.transaction(() => this.storeSubmission(p.prepared)) });
          } catch (err) {
            outcomes.push({ ok: false, err });
          }
        }
      });
    } catch (err) {
      // The commit itself failed: nothing of the batch is stored.
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined) p.reject(new Error('submission lost from its batch'));
      else if (outcome.ok) p.resolve(this.submitted(outcome.task));
      else p.reject(outcome.err);
    });
  }

  /** Everything a submission needs checked and decided before it is stored; throws on bad input. */
  private prepareSubmission(input: SubmitInput, principal: Principal): PreparedSubmission {
    const tenant = input.tenant ?? principal.tenant;
    if (tenant !== null) checkTenantName(tenant);
    const { quota, quotas } = this.tenantService.quotaOf(tenant);
    // "Could it ever run here" is asked of the machine without cordons and faults: those are lifted some day, and the task waits for it.
    const ctx = { devices: this.inventory.gpus(), node: this.inventory.machine(), policy: this.policy, feasible: this.inventory.feasible() };
    const request = admit(ctx, input, tenant !== null && quota !== null ? { name: tenant, quota, quotas } : null);
    const cwd = checkCwd(input.cwd ?? process.cwd(), tenant, this.sandbox);
    return { input, principal, tenant, request, cwd, id: newTaskId(), at: this.now() };
  }

  /** The task's row, its audit entry and its event: call inside a transaction. */
  private storeSubmission(p: PreparedSubmission, idempotency?: { readonly key: string; readonly bodySha256: string }): Task {
    const files = taskFiles(this.options.stateDir, p.id);
    const t = this.store.create({
      id: p.id,
      command: [...p.input.command],
      env: { ...(p.input.env ?? {}) },
      cwd: p.cwd,
      request: p.request,
      priority: p.request.priority,
      tenant: p.tenant,
      submittedAt: p.at,
      stdoutPath: files.stdout,
      stderrPath: files.stderr,
      regionPath: this.sandbox.regionPath(p.id) ?? files.region,
    });
    this.store.audit(p.at, { actor: p.principal.actor, role: p.principal.role, action: 'task.submit', target: p.id, detail: { command: t.command, request: p.input } });
    if (idempotency) this.store.idempotency.record(p.principal.actor, idempotency.key, idempotency.bodySha256, p.id, p.at);
    this.bus.record('task.submitted', p.id, { priority: t.priority, tenant: p.tenant });
    return t;
  }

  /** A committed submission: logged, handed to the queue, answered. */
  private submitted(task: Task): Task {
    this.log.info({ task: task.id, command: task.command, priority: task.priority }, 'task submitted');
    // Answered as stored (queued); the spawner makes its directory and log files as it starts it.
    this.queue.submitted(task);
    return this.withWaiting(task);
  }



  /**
   * The task an earlier submission with this Idempotency-Key made (within 24 h, by the same
   * caller), or null when the key is new. The same key with another body is refused: it names
   * a different submission. Call it and submit() in the same tick, so no other request with the
   * key comes between.
   */
  replay(principal: Principal, key: string, bodySha256: string): Task | null {
    const prior = this.store.idempotency.find(principal.actor, key, this.now());
    if (prior === null) return null;
    if (prior.bodySha256 !== bodySha256) {
      throw new GsError(ErrorCodes.idempotencyMismatch, `Idempotency-Key "${shown(key)}" was used for a different submission (task ${prior.taskId}, ${new Date(prior.createdAt).toISOString()}); a new submission needs a new key`);
    }
    return this.get(prior.taskId);
  }

  /**
   * Stops a task: a queued one is cancelled; a running one gets `signal` (SIGTERM by default) on
   * its whole process group, then SIGKILL after the grace period if it is still there.
   */
  kill(idOrPrefix: string, by: Actor, options: { signal?: string | undefined; graceMs?: number | undefined } = {}): Task {
    const task = this.get(idOrPrefix);
    const signal = signalNumber(options.signal ?? 'SIGTERM');
    if (signal === null) throw new GsError(ErrorCodes.invalidArgument, `"${options.signal}" is not a signal; expected a name such as SIGTERM, SIGINT, SIGKILL or its number`);
    if (!LIVE_STATES.has(task.state)) throw new GsError(ErrorCodes.conflict, `task ${task.id} already ended (${task.state})`);
    const audit = { action: 'task.kill', target: task.id, detail: { signal: signalName(signal) } };
    if (task.state === 'queued') {
      const at = this.now();
      this.store.transaction(() => {
        this.tenantService.audit(by, audit);
        this.bus.commit(task.id, { state: 'killed', finishedAt: at, killRequested: true, message: 'cancelled while queued' }, 'task.killed', { queued: true });
      });
      // It may have been the head the queue was waiting on: those behind it may fit now.
      this.queue.pump();
      return this.store.get(task.id);
    }
    // Stored with the request, so a restarted daemon sends it again and escalates on time.
    const deadline = this.now() + (options.graceMs ?? this.options.killGraceMs);
    this.store.transaction(() => {
      this.tenantService.audit(by, audit);
      this.bus.commit(task.id, { killRequested: true, killSignal: signalName(signal), killDeadline: deadline }, 'task.kill-requested', { signal: signalName(signal) });
    });
    this.lifecycle.signal(task, signal, deadline);
    return this.store.get(task.id);
  }

  /**
   * Removes a finished task: its record, and its directory (logs, exit status) once that is
   * committed. A live one is refused: it is killed first (`gpushare rm -f` does).
   */
  remove(idOrPrefix: string, by: Actor): RemovedTask {
    const task = this.get(idOrPrefix);
    if (LIVE_STATES.has(task.state)) throw new GsError(ErrorCodes.conflict, `task ${task.id} is ${describeState(task)}; only a finished task can be removed (kill it first, or gpushare rm -f)`);
    return this.removeFinished([task], by, { action: 'task.remove', target: task.id, detail: {} })[0] as RemovedTask;
  }

  /** Removes the finished tasks that ended before `before` (epoch ms), of one tenant or all; `dryRun` only says which. */
  prune(before: number, by: Actor, options: { readonly tenant?: string | undefined; readonly dryRun?: boolean }): RemovedTask[] {
    const tasks = this.store.finishedBefore(before, options.tenant);
    if (options.dryRun) return tasks.map((t) => ({ id: t.id, freedBytes: diskUse(taskFiles(this.options.stateDir, t.id).dir) }));
    return this.removeFinished(tasks, by, { action: 'task.prune', target: options.tenant ?? null, detail: { before, ids: tasks.map((t) => t.id) } });
  }

  /** Rows and the audit record in one commit; the directories after it (a rollback leaves them). */
  private removeFinished(tasks: readonly Task[], by: Actor, audit: Omit<AuditEntry, 'actor' | 'role'>): RemovedTask[] {
    const dirs = tasks.map((t) => taskFiles(this.options.stateDir, t.id).dir);
    const removed = tasks.map((t, i) => ({ id: t.id, freedBytes: diskUse(dirs[i] ?? '') }));
    this.store.transaction(() => {
      this.tenantService.audit(by, audit);
      for (const t of tasks) this.store.remove(t.id);
    });
    for (const dir of dirs) removeDir(dir).catch((err: unknown) => this.log.warn({ err, dir }, 'cannot remove a removed task\'s directory'));
    return removed;
  }

  /**
   * Suspends a running task: its GPU memory goes to host memory and its processes stop; its
   * GPUs are free for others. It stays suspended until resumed (`resume`).
   */
  async suspend(idOrPrefix: string, by: Actor): Promise<Task> {
    const task = this.get(idOrPrefix);
    this.checkSuspendable(task);
    this.tenantService.audit(by, { action: 'task.suspend', target: task.id, detail: {} });
    const result = await this.lifecycle.suspend(task, { preemptedBy: null, autoResume: false, by: by.actor });
    if (!result.ok) throw new GsError(ErrorCodes.checkpointFailed, `task ${task.id} could not be suspended and goes on running: ${result.message}`, { details: { checkpointCode: result.code } });
    return this.store.get(task.id);
  }

  /**
   * Resumes a suspended task on its GPUs, or on other GPUs of the same model. Without room now,
   * it stays suspended and resumes by itself as soon as room returns (`autoResume`).
   */
  async resume(idOrPrefix: string, by: Actor): Promise<Task> {
    const task = this.get(idOrPrefix);
    if (task.state !== 'suspended') throw new GsError(ErrorCodes.conflict, `task ${task.id} is ${describeState(task)}; only a suspended task can be resumed`);
    if (!this.options.checkpoint && this.options.swap !== true) throw new GsError(ErrorCodes.checkpointUnavailable, `cannot resume: ${this.lifecycle.checkpointProblem()}`);
    this.store.transaction(() => {
      this.tenantService.audit(by, { action: 'task.resume', target: task.id, detail: {} });
      this.store.update(task.id, { autoResume: true, message: null });
    });
    this.queue.pump();
    const op = this.lifecycle.operation(task.id);
    if (op) await op;
    const after = this.withWaiting(this.store.get(task.id));
    if (after.state === 'suspended' && after.message !== null && after.message.startsWith('resume failed')) throw new GsError(ErrorCodes.checkpointFailed, `task ${task.id}: ${after.message}; it stays suspended and is retried when room changes`);
    return after;
  }

  /**
   * Moves a task's slices to other GPUs of the same model (`targets`: GPU indices, one per GPU
   * of the task): a running task is suspended (by slice swap where it can), then resumed onto
   * the targets (move.ts); a suspended one is resumed onto them and runs. Refused, changing
   * nothing, when the targets are not of its GPUs' model or have no room for its slices (the
   * engine's reasons), or without the checkpoint API (only the driver moves contexts). If the
   * move itself fails, the task goes back to its own GPUs: running again if it was running.
   */
  async move(idOrPrefix: string, targets: readonly number[], by: Actor): Promise<Task> {
    const task = this.get(idOrPrefix);
    // A refusal is audited by the route (its `action`), as for every refused change.
    const refuse = (err: GsError): never => {
      throw err;
    };
    if (task.state !== 'running' && task.state !== 'suspended') refuse(new GsError(ErrorCodes.conflict, `task ${task.id} is ${describeState(task)}; only a running or suspended task can be moved`));
    if (task.killRequested) refuse(new GsError(ErrorCodes.conflict, `task ${task.id} is being killed; it cannot be moved`));
    if (!this.options.checkpoint) refuse(new GsError(ErrorCodes.checkpointUnavailable, `cannot move: the CUDA checkpoint API moves a task's contexts to another GPU, and ${this.lifecycle.checkpointProblem()}`));
    const plan = this.queue.planMove(task, targets);
    if (!plan.ok) refuse(moveRefused(task.id, plan.refusal));
    const wasRunning = task.state === 'running';
    this.tenantService.audit(by, { action: 'task.move', target: task.id, detail: { gpus: [...targets] } });
    if (wasRunning) {
      const suspended = await this.lifecycle.suspend(task, { preemptedBy: null, autoResume: false, by: by.actor });
      if (!suspended.ok) throw new GsError(ErrorCodes.checkpointFailed, `task ${task.id} could not be suspended to move, and goes on running on its own GPUs: ${suspended.message}`, { details: { checkpointCode: suspended.code } });
    }
    // Again on the machine as it is now: a task may have taken the room while this one was suspended.
    const now = this.store.get(task.id);
    const again = now.state === 'suspended' ? this.queue.planMove(now, targets) : null;
    if (again?.ok === true) {
      this.lifecycle.resume(now, again.gpus);
      const op = this.lifecycle.operation(task.id);
      if (op) await op;
    }
    const after = this.store.get(task.id);
    if (after.state !== 'suspended') return this.withWaiting(after);
    // Not moved: back onto its own GPUs if it was running (the queue resumes it there when room allows).
    if (wasRunning) {
      this.store.update(task.id, { autoResume: true });
      this.queue.pump();
      const back = this.lifecycle.operation(task.id);
      if (back) await back;
    }
    const why = again === null ? 'it was not suspended' : again.ok ? (after.message ?? 'the resume failed') : again.refusal.text;
    throw new GsError(ErrorCodes.checkpointFailed, `task ${task.id} was not moved: ${why}; ${wasRunning ? 'it goes back to its own GPUs' : 'it stays suspended'}`, { details: { moveCode: again?.ok === false ? again.refusal.code : 'failed' } });
  }

  private checkSuspendable(task: Task): void {
    if (task.state !== 'running') throw new GsError(ErrorCodes.conflict, `task ${task.id} is ${describeState(task)}; only a running task can be suspended`);
    if (task.killRequested) throw new GsError(ErrorCodes.conflict, `task ${task.id} is being killed; it cannot be suspended`);
    if (!this.options.checkpoint && this.options.swap !== true) throw new GsError(ErrorCodes.checkpointUnavailable, `cannot suspend: ${this.lifecycle.checkpointProblem()}`);
  }

}

/** A move the checks refuse: the target is wrong (400) or has no room now (409); details carry the check's code and the engine's per-GPU reasons. */
function moveRefused(id: string, r: MoveRefusal): GsError {
  const code = r.code === 'no-room' ? ErrorCodes.conflict : ErrorCodes.invalidArgument;
  return new GsError(code, `task ${id} cannot move: ${r.text}`, { details: { moveCode: r.code, ...(r.code === 'no-room' ? { gpus: r.gpus } : {}) } });
}

/** `queued`, `already suspended`, `ended (exited)`: a task's state in an error message. */
function describeState(task: Task): string {
  switch (task.state) {
    case 'queued':
      return 'queued (not started yet)';
    case 'suspended':
      return 'already suspended';
    case 'suspending':
      return 'being suspended';
    case 'resuming':
      return 'being resumed';
    case 'starting':
      return 'starting';
    case 'running':
      return 'running';
    default:
      return `already ended (${task.state})`;
  }
}

/**
 * The task's working directory: absolute, and one its user can enter. A task that runs as a
 * tenant's own user is checked as that user, with one answer whether the directory is missing or
 * closed to it, so a daemon that can see everything tells a tenant no more than it could find out
 * itself.
 */
function checkCwd(cwd: string, tenant: string | null, sandbox: Sandbox): string {
  if (!isAbsolute(cwd)) throw new GsError(ErrorCodes.invalidArgument, `cwd: "${cwd}" is not an absolute path`);
  let user: TaskUser | null = null;
  try {
    user = sandbox.userFor(tenant);
  } catch {
    user = null; // no user to be had: the start fails and says so; the daemon's view decides here
  }
  if (user !== null) {
    if (!canEnter(cwd, user, dirStat)) throw new GsError(ErrorCodes.invalidArgument, `cwd: "${cwd}" is not a directory that the task's user (uid ${user.uid}) can enter on the daemon's machine`);
    return cwd;
  }
  if (dirStat(cwd)?.isDirectory !== true) throw new GsError(ErrorCodes.invalidArgument, `cwd: "${cwd}" is not an existing directory on the daemon's machine`);
  return cwd;
}

function dirStat(path: string): DirStat | null {
  try {
    const st = statSync(path);
    return { uid: st.uid, gid: st.gid, mode: st.mode, isDirectory: st.isDirectory() };
  } catch {
    return null;
  }
}
