/**
 * The node daemon: the coordinator of the queue. Each change goes decide, then commit, then
 * perform: the queue planner (planner.ts, pure) decides from a snapshot of the machine what to
 * start, resume, preempt or leave waiting and why; each decision is committed to the store (one
 * SQLite transaction per state change: the task row, its event, and for API changes an audit
 * row) before the lifecycle layer (lifecycle.ts) touches a process, so a crash between the two
 * leaves a state the next start can reconcile. Tenants, quotas and the audit log are their own
 * service (tenant-service.ts); admission is pure functions (admission.ts); events go to
 * listeners through TaskEvents (events.ts).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { Logger } from 'pino';
import { describeIssues, ErrorCodes, GsError, type SmGroups } from '../domain/index.js';
import type { GpuSlice, GpuWithSlices } from '../contract/gpus.js';
import type { Principal } from '../contract/principal.js';
import type { SubmitInput } from '../contract/task.js';
import type { GpuBackend } from '../gpu/backend.js';
import type { CheckpointApi } from '../gpu/checkpoint.js';
import { buildSnapshot, createPrng, parsePolicy, type ClusterSnapshot, type NodeSpec, type Placement, type Policy, type Prng, type TenantQuota, type TenantUsage } from '../scheduler/index.js';
import { admit } from './admission.js';
import { TaskEvents, type EventListener } from './events.js';
import { taskFiles, type NativePaths } from './launcher.js';
import { Lifecycle } from './lifecycle.js';
import type { MpsControl } from './mps.js';
import { currentSnapshot, localNode, rangesOnto, taskPlacement, type Holder } from './placement.js';
import { planQueue, waitReasons, type Plan, type PreemptionPolicy } from './planner.js';
import { signalName, signalNumber } from './proc.js';
import type { AuditEntry, AuditRecord, EventRecord, TaskStore } from './store/tasks.js';
import type { Quota } from './store/tenants.js';
import { TenantService } from './tenant-service.js';
import { checkTenantName, type QuotaInput, type TenantView } from './tenants.js';
import { HOLDING_STATES, LIVE_STATES, STARTED_STATES, type Task, type WaitReason } from '../contract/task.js';
import { queueOrder } from './task.js';

export { PREEMPTION_POLICIES, type PreemptionPolicy } from './planner.js';
export type { EventListener } from './events.js';

export interface DaemonOptions {
  readonly stateDir: string;
  readonly backend: GpuBackend;
  readonly store: TaskStore;
  readonly logger: Logger;
  readonly native: NativePaths;
  readonly policy: string;
  readonly killGraceMs: number;
  /** The environment tasks start from (the daemon's own by default). */
  readonly baseEnv?: Readonly<Record<string, string | undefined>>;
  readonly now?: () => number;
  /** The CUDA checkpoint API; null: suspend, resume and preemption by suspension are unavailable (`checkpointProblem` says why). */
  readonly checkpoint?: CheckpointApi | null;
  readonly checkpointProblem?: string;
  readonly preemption?: PreemptionPolicy;
  /** How long lock may wait for a task's GPU work to drain; 0: as long as it takes. */
  readonly lockTimeoutMs?: number;
  /** The MPS control daemon sm-partition tasks run under (mps.ts); null or absent: none. */
  readonly mps?: MpsControl | null;
  /** What the driver groups of each GPU's SMs, by UUID (smgroups.ts); absent GPUs: every whole group of 8. */
  readonly smGroups?: ReadonlyMap<string, SmGroups>;
}

export class Daemon {
  private readonly store: TaskStore;
  private readonly log: Logger;
  private readonly policy: Policy;
  private readonly rng: Prng;
  private readonly now: () => number;
  private readonly bus: TaskEvents;
  private readonly lifecycle: Lifecycle;
  /** Tenants, quotas and the audit log. */
  readonly tenantService: TenantService;
  private node: NodeSpec;
  private closed = false;
  /**
   * The queued task the last pump stopped at for want of room, if any. Until something ends or
   * changes, a submission queued behind it cannot start, so submit skips the pump (which reads
   * the whole queue): a deep queue does not make every submission slower.
   */
  private blockedAt: Pick<Task, 'id' | 'priority' | 'seq'> | null = null;
  /**
   * Why each waiting task waits, as the last pump decided. Kept in memory, not stored: it is
   * recomputed by every pass (and the first pass after a restart), describes the machine now
   * rather than the task's history, and writing it would add a write per queued task per pass.
   */
  private waiting = new Map<string, WaitReason>();

  constructor(private readonly options: DaemonOptions) {
    this.store = options.store;
    this.log = options.logger;
    this.now = options.now ?? Date.now;
    const policy = parsePolicy(options.policy);
    if (!policy.ok) throw new GsError(ErrorCodes.invalidArgument, `policy: ${describeIssues(policy.issues)}`);
    this.policy = policy.value;
    this.rng = createPrng(0x5eed);
    this.node = localNode(options.backend.gpus());
    this.bus = new TaskEvents(this.store, this.log, this.now);
    this.tenantService = new TenantService(this.store, this.now, () => this.usage());
    this.lifecycle = new Lifecycle({
      stateDir: options.stateDir,
      store: this.store,
      events: this.bus,
      logger: this.log,
      now: this.now,
      native: options.native,
      killGraceMs: options.killGraceMs,
      baseEnv: options.baseEnv,
      checkpoint: options.checkpoint ?? null,
      checkpointProblem: options.checkpointProblem,
      preemption: options.preemption ?? 'suspend',
      lockTimeoutMs: options.lockTimeoutMs ?? 0,
      mps: options.mps ?? null,
      onChange: () => this.pump(),
    });
  }

  /** Reconciles with what survived the last daemon, then starts whatever fits. */
  start(): void {
    this.lifecycle.adopt();
    // Partitions that outlived the last daemon are clients of its MPS control daemon: adopt it
    // now, so that it is known (and stopped only once they are gone).
    if (this.partitionClients() > 0) this.options.mps?.ensure();
    this.pump();
  }

  /** sm-partition tasks whose processes exist (MPS clients, or about to be). */
  partitionClients(): number {
    return this.store.list().filter((t) => STARTED_STATES.has(t.state) && t.request.isolation === 'sm-partition').length;
  }

  close(): void {
    if (!this.closed) this.options.mps?.stop(this.partitionClients());
    this.closed = true;
    this.lifecycle.close();
    this.bus.close();
  }

  onEvent(listener: EventListener): () => void {
    return this.bus.onEvent(listener);
  }

  /** Events after `since`: all of them for an admin, a tenant's own tasks' otherwise. */
  events(since: number, limit: number, principal?: Principal): EventRecord[] {
    return this.store.events(since, limit, principal === undefined || principal.role === 'admin' ? undefined : (principal.tenant ?? ''));
  }

  /** Whether `principal` may see `event` (for live streams). */
  canSeeEvent(principal: Principal, event: EventRecord): boolean {
    if (principal.role === 'admin') return true;
    if (event.taskId === null) return false;
    try {
      return this.store.get(event.taskId).tenant === principal.tenant;
    } catch {
      return false;
    }
  }

  auditLog(principal: Principal, since: number, limit: number): AuditRecord[] {
    return this.tenantService.auditLog(principal, since, limit);
  }

  /** Records a change the API refused, so the audit log shows attempts as well as changes. */
  recordRefusal(principal: Principal, entry: Omit<AuditEntry, 'actor' | 'role'>): void {
    this.tenantService.audit(principal, entry);
  }

  tenants(principal: Principal): TenantView[] {
    return this.tenantService.list(principal);
  }

  tenant(name: string, principal: Principal): TenantView {
    return this.tenantService.get(name, principal);
  }

  createTenant(name: string, quota: QuotaInput, principal: Principal): TenantView {
    return this.tenantService.create(name, quota, principal);
  }

  /** Changes a tenant's quota; lowering it below what runs now stops nothing, it holds back what is queued. */
  setQuota(name: string, quota: QuotaInput, principal: Principal): TenantView {
    this.tenantService.setQuota(name, quota, principal);
    this.pump(); // a raised quota may let queued tasks start
    return this.tenantService.get(name, principal);
  }

  deleteTenant(name: string, principal: Principal): void {
    this.tenantService.delete(name, principal);
  }

  /** See TenantService.declare. */
  declareTenant(name: string, quota: Quota, actor: string): void {
    this.tenantService.declare(name, quota, actor);
  }

  /** What each tenant's running tasks hold, as the scheduler counts it. */
  private usage(): ReadonlyMap<string, TenantUsage> {
    return currentSnapshot(this.node, this.store.list().filter((t) => HOLDING_STATES.has(t.state))).usage;
  }

  /** GPUs with their slices; a user sees that others' slices exist and their size, not whose they are. */
  gpus(principal?: Principal): GpuWithSlices[] {
    const gpus = this.options.backend.gpus();
    const running = this.store.list().filter((t) => HOLDING_STATES.has(t.state));
    return gpus.map((g) => {
      const slices = running.flatMap((t) => {
        const usage = this.lifecycle.usage(t.id);
        return this.lifecycle.gpusOf(t).flatMap((x, ordinal): GpuSlice[] => {
          if (x.uuid !== g.uuid) return [];
          const used = usage === null ? null : (usage.find((u) => u.device === ordinal) ?? { memoryBytes: 0, computeShare: 0 });
          const sm = t.smRanges?.[ordinal];
          const mine = principal === undefined || canSee(principal, t);
          return [
            {
              taskId: mine ? t.id : null,
              tenant: mine ? t.tenant : null,
              priority: t.priority,
              memoryBytes: x.memoryBytes,
              computeMilli: x.computeMilli,
              usedMemoryBytes: used?.memoryBytes ?? null,
              computeShare: used?.computeShare ?? null,
              smRange: sm === undefined ? null : { offset: sm.offset, count: sm.count },
            },
          ];
        });
      });
      return {
        ...g,
        slices,
        allocatedMemoryBytes: slices.reduce((s, x) => s + x.memoryBytes, 0),
        allocatedComputeMilli: slices.reduce((s, x) => s + x.computeMilli, 0),
      };
    });
  }

  /** See TaskStore.liveVersion. */
  liveVersion(): number {
    return this.store.liveVersion();
  }

  list(all: boolean, principal: Principal): Task[] {
    return this.store
      .list(all)
      .filter((t) => canSee(principal, t))
      .map((t) => this.withWaiting(t));
  }

  get(idOrPrefix: string, principal: Principal): Task {
    const task = this.store.resolve(idOrPrefix);
    if (!canSee(principal, task)) throw new GsError(ErrorCodes.notFound, `no task "${idOrPrefix}"`);
    return this.withWaiting(task);
  }

  /** The task with why it waits, if it is waiting (queued, or suspended waiting to resume). */
  private withWaiting(task: Task): Task {
    if (task.state !== 'queued' && task.state !== 'suspended') return task;
    const waiting = this.waiting.get(task.id);
    return waiting === undefined ? task : { ...task, waiting };
  }

  /** Validates everything first: a refused submission leaves no trace but its error. */
  submit(input: SubmitInput, principal: Principal): Task {
    const tenant = this.tenantFor(input.tenant, principal);
    if (tenant !== null) checkTenantName(tenant);
    const { quota, quotas } = this.tenantService.quotaOf(tenant);
    const ctx = { devices: this.options.backend.gpus(), node: this.node, policy: this.policy, smGroups: this.options.smGroups };
    const request = admit(ctx, input, tenant !== null && quota !== null ? { name: tenant, quota, quotas } : null);
    const cwd = checkCwd(input.cwd ?? process.cwd());
    const id = randomBytes(6).toString('hex');
    const files = taskFiles(this.options.stateDir, id);
    const at = this.now();
    const task = this.store.transaction(() => {
      const t = this.store.create({
        id,
        command: [...input.command],
        env: { ...(input.env ?? {}) },
        cwd,
        request,
        priority: request.priority,
        tenant,
        submittedAt: at,
        stdoutPath: files.stdout,
        stderrPath: files.stderr,
        regionPath: files.region,
      });
      this.store.audit(at, { actor: principal.actor, role: principal.role, action: 'task.submit', target: id, detail: { command: t.command, request: input } });
      this.bus.record('task.submitted', id, { priority: t.priority, tenant });
      return t;
    });
    this.log.info({ task: id, command: task.command, priority: task.priority }, 'task submitted');
    const head = this.blockedAt;
    if (head !== null && queueOrder(task, head) > 0) {
      // Queued behind the blocked head: as created, and why it waits is plain without a pass.
      this.waiting.set(id, behind(head.id));
      return this.withWaiting(task);
    }
    this.pump();
    return this.withWaiting(this.store.get(id));
  }

  /**
   * Stops a task: a queued one is cancelled; a running one gets `signal` (SIGTERM by default) on
   * its whole process group, then SIGKILL after the grace period if it is still there.
   */
  kill(idOrPrefix: string, principal: Principal, options: { signal?: string | undefined; graceMs?: number | undefined } = {}): Task {
    const task = this.get(idOrPrefix, principal);
    const signal = signalNumber(options.signal ?? 'SIGTERM');
    if (signal === null) throw new GsError(ErrorCodes.invalidArgument, `"${options.signal}" is not a signal; expected a name such as SIGTERM, SIGINT, SIGKILL or its number`);
    if (!LIVE_STATES.has(task.state)) throw new GsError(ErrorCodes.conflict, `task ${task.id} already ended (${task.state})`);
    const audit = { action: 'task.kill', target: task.id, detail: { signal: signalName(signal) } };
    if (task.state === 'queued') {
      const at = this.now();
      this.store.transaction(() => {
        this.tenantService.audit(principal, audit);
        this.bus.commit(task.id, { state: 'killed', finishedAt: at, killRequested: true, message: 'cancelled while queued' }, 'task.killed', { queued: true });
      });
      // It may have been the head the queue was waiting on: those behind it may fit now.
      this.pump();
      return this.store.get(task.id);
    }
    this.store.transaction(() => {
      this.tenantService.audit(principal, audit);
      this.bus.commit(task.id, { killRequested: true }, 'task.kill-requested', { signal: signalName(signal) });
    });
    this.lifecycle.signal(task, signal, options.graceMs ?? this.options.killGraceMs);
    return this.store.get(task.id);
  }

  /**
   * Suspends a running task: its GPU memory goes to host memory and its processes stop; its
   * GPUs are free for others. It stays suspended until resumed (`resume`).
   */
  async suspend(idOrPrefix: string, principal: Principal): Promise<Task> {
    const task = this.get(idOrPrefix, principal);
    this.checkSuspendable(task);
    this.tenantService.audit(principal, { action: 'task.suspend', target: task.id, detail: {} });
    const result = await this.lifecycle.suspend(task, { preemptedBy: null, autoResume: false, by: principal.actor });
    if (!result.ok) throw new GsError(ErrorCodes.checkpointFailed, `task ${task.id} could not be suspended and goes on running: ${result.message}`, { details: { checkpointCode: result.code } });
    return this.store.get(task.id);
  }

  /**
   * Resumes a suspended task on its GPUs, or on other GPUs of the same model. Without room now,
   * it stays suspended and resumes by itself as soon as room returns (`autoResume`).
   */
  async resume(idOrPrefix: string, principal: Principal): Promise<Task> {
    const task = this.get(idOrPrefix, principal);
    if (task.state !== 'suspended') throw new GsError(ErrorCodes.conflict, `task ${task.id} is ${describeState(task)}; only a suspended task can be resumed`);
    if (!this.options.checkpoint) throw new GsError(ErrorCodes.checkpointUnavailable, `cannot resume: ${this.lifecycle.checkpointProblem()}`);
    this.store.transaction(() => {
      this.tenantService.audit(principal, { action: 'task.resume', target: task.id, detail: {} });
      this.store.update(task.id, { autoResume: true, message: null });
    });
    this.pump();
    const op = this.lifecycle.operation(task.id);
    if (op) await op;
    const after = this.withWaiting(this.store.get(task.id));
    if (after.state === 'suspended' && after.message !== null && after.message.startsWith('resume failed')) throw new GsError(ErrorCodes.checkpointFailed, `task ${task.id}: ${after.message}; it stays suspended and is retried when room changes`);
    return after;
  }

  private checkSuspendable(task: Task): void {
    if (task.state !== 'running') throw new GsError(ErrorCodes.conflict, `task ${task.id} is ${describeState(task)}; only a running task can be suspended`);
    if (task.killRequested) throw new GsError(ErrorCodes.conflict, `task ${task.id} is being killed; it cannot be suspended`);
    if (!this.options.checkpoint) throw new GsError(ErrorCodes.checkpointUnavailable, `cannot suspend: ${this.lifecycle.checkpointProblem()}`);
  }

  private tenantFor(asked: string | undefined, principal: Principal): string | null {
    if (principal.role === 'admin') return asked ?? principal.tenant;
    if (asked !== undefined && asked !== principal.tenant) throw new GsError(ErrorCodes.forbidden, `tenant "${principal.tenant}" may not submit for tenant "${asked}"`);
    return principal.tenant;
  }

  /** One pass over the queue: decide (planner.ts), then commit and perform each action. */
  private pump(): void {
    this.blockedAt = null;
    if (this.closed) return;
    const all = this.store.list();
    // Suspended tasks waiting for room take their turn in the queue, like queued ones.
    const queue = all.filter((t) => t.state === 'queued' || (t.state === 'suspended' && t.autoResume && !this.lifecycle.isBusy(t.id))).sort(queueOrder);
    if (queue.length === 0) {
      this.waiting = new Map();
      return;
    }
    const devices = this.options.backend.gpus();
    this.node = localNode(devices);
    const plan = planQueue(
      { node: this.node, policy: this.policy, rng: this.rng, devices, smGroups: this.options.smGroups },
      {
        snapshot: this.snapshot(all, this.tenantService.quotas()),
        holders: this.holders(all),
        queue,
        preemption: this.options.preemption ?? 'suspend',
        suspendable: this.options.checkpoint != null,
        suspending: all.filter((t) => t.state === 'suspending'),
      },
    );
    this.waiting = waitReasons(plan);
    this.blockedAt = plan.blocked;
    this.perform(plan);
  }

  /** Commits and performs a plan's actions in order (each commit is the lifecycle's or here). */
  private perform(plan: Plan): void {
    for (const action of plan.actions) {
      switch (action.kind) {
        case 'start':
          this.lifecycle.start(action.task, action.gpus, action.smRanges);
          break;
        case 'resume':
          this.lifecycle.resume(action.task, action.gpus);
          break;
        case 'wait':
          if (action.message !== undefined && action.task.message !== action.message) this.store.update(action.task.id, { message: action.message });
          if (action.reason.kind === 'noRoom' && action.reason.preemption === 'needsKill') {
            this.log.info({ task: action.task.id, reason: this.options.checkpoint ? 'victims cannot be suspended' : this.lifecycle.checkpointProblem() }, 'preemption would need kills; policy "suspend" never kills');
          }
          break;
        case 'preempt': {
          const task = action.task;
          const victims = action.victims.map((v) => ({ task: this.store.get(v.taskId), action: v.action === 'suspend' ? ('suspend' as const) : ('evict' as const) }));
          this.bus.record('task.preempting', task.id, { victims: victims.map((v) => ({ id: v.task.id, action: v.action })) });
          this.log.info({ task: task.id, victims: victims.map((v) => `${v.task.id}:${v.action}`) }, 'preempting lower-priority tasks');
          for (const v of victims) {
            if (v.action === 'suspend') void this.lifecycle.suspend(v.task, { preemptedBy: task.id, autoResume: true, by: `preemption:${task.id}` });
            else this.lifecycle.evict(v.task, task.id, 'cannot be suspended');
          }
          break;
        }
      }
    }
  }

  /** Tasks that hold GPUs now, on the GPUs they hold (resuming ones on their targets). */
  private holders(all: readonly Task[]): Holder[] {
    return all
      .filter((t) => HOLDING_STATES.has(t.state))
      .map((t) => {
        const gpus = this.lifecycle.gpusOf(t);
        return { id: t.id, isolation: t.request.isolation, gpus, smRanges: rangesOnto(t.smRanges, gpus) };
      });
  }

  /**
   * The machine as the scheduler sees it: tasks that hold GPUs (running, suspending, resuming
   * onto their targets). Suspended tasks hold nothing. Placements with an operation in flight are
   * out of the planner's reach (priority beyond any task's).
   */
  private snapshot(all: readonly Task[], quotas: ReadonlyMap<string, TenantQuota>): ClusterSnapshot {
    const placements: Placement[] = [];
    for (const t of all) {
      if (!HOLDING_STATES.has(t.state)) continue;
      const target = this.lifecycle.resumeTarget(t.id);
      const p = taskPlacement(target ? { ...t, gpus: target } : t, this.node);
      if (!p) continue;
      const locked = this.lifecycle.isBusy(t.id) || t.state !== 'running' || t.killRequested;
      placements.push({ ...p, suspendable: this.options.checkpoint != null, priority: locked ? Number.MAX_SAFE_INTEGER : p.priority });
    }
    return buildSnapshot([this.node], placements, quotas);
  }
}

function behind(taskId: string): WaitReason {
  return { kind: 'behind', taskId, text: `queued behind task ${taskId}, which does not fit yet (no task jumps the queue)` };
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
    case 'running':
      return 'running';
    default:
      return `already ended (${task.state})`;
  }
}

function canSee(principal: Principal, task: Task): boolean {
  return principal.role === 'admin' || task.tenant === principal.tenant;
}

function checkCwd(cwd: string): string {
  if (!isAbsolute(cwd)) throw new GsError(ErrorCodes.invalidArgument, `cwd: "${cwd}" is not an absolute path`);
  if (!existsSync(cwd) || !statSync(cwd).isDirectory()) throw new GsError(ErrorCodes.invalidArgument, `cwd: "${cwd}" is not an existing directory on the daemon's machine`);
  return cwd;
}
